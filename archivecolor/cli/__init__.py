"""The `archivecolor` command: parse options -> config -> call the library -> exit code.

One module per command family (train, folder, video, evaluate, engine) and what they share
(common). Heavy imports (torch, cv2) happen inside the commands, so `archivecolor --help` is instant.
"""

from __future__ import annotations

import click

from . import engine, evaluate, folder, train, video


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="archivecolor")
def main():
    """archivecolor: colorize black-and-white photo and film archives with a Pix2Pix cGAN."""


for command in (train.train, train.average_weights, folder.folder, video.video, evaluate.evaluate, engine.build_engine_command):
    main.add_command(command)
