"""Films: ffmpeg pipes in and out, temporal a/b smoothing, the streaming pipeline."""
