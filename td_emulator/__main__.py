"""``python -m connector.emulator --port 7300 --admin``."""

from connector.emulator.cli import main

main()
