"""Sub-commands of the ``autochip`` CLI; see :data:`autochip.cli.COMMANDS`."""
