#!/usr/bin/env python3
"""The child of the keystroke-echo benchmark: raw mode, echoes every byte back, `q` quits."""

import os
import sys
import termios
import tty

saved = termios.tcgetattr(0)
tty.setraw(0)
os.write(1, b"READY\r\n")
try:
    while True:
        b = os.read(0, 1)
        if not b or b == b"q":
            break
        os.write(1, b)
finally:
    termios.tcsetattr(0, termios.TCSADRAIN, saved)
sys.exit(0)
