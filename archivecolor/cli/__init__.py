"""The `archivecolor` command: parse options -> config -> call the library -> exit code.

One module per command family (train, folder, video, evaluate, engine) and what they share
(common). Heavy imports (torch, cv2) happen inside the commands, so `archivecolor --help` is instant.
"""

from __future__ import annotations

import click

from . import engine, evaluate, folder, hints, train, video


class _InOrder(click.Group):
    """Commands listed as a user meets them (everyday first, tools last), not alphabetically."""

    def list_commands(self, ctx):
        return list(self.commands)


@click.group(cls=_InOrder, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="Start with: archivecolor folder my_scans/ --sheet   (then open my_scans-colorized/before-after.jpg)")
@click.version_option(package_name="archivecolor")
def main():
    """archivecolor: colorize black-and-white photo and film archives with a Pix2Pix cGAN.

    Sources are never modified; outputs are written atomically and a re-run resumes.
    """


# everyday commands first, then measuring, making a model, and the tools
for command in (folder.folder, video.video, evaluate.evaluate, train.train, engine.build_engine_command, hints.hints,
                train.average_weights):
    main.add_command(command)
