"""archivecolor: batch colorization of black-and-white photo and film archives."""

__version__ = "0.1.0"
