"""Films: ffmpeg pipes in and out, temporal a/b smoothing, the streaming pipeline: naming, config, chunks, stream, film (the driver)."""
