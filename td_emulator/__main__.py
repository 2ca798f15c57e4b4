"""``python -m td_emulator --port 7300 --admin``."""

from td_emulator.cli import main

main()
