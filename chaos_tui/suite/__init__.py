"""Suites: several scenarios run one after another (a game day, a soak), as data.

`model.py` is the suite file's shape, `load.py` finds a suite by file or by built-in name and
reads it with every problem at its line. Data only: nothing here starts, plans or imports a
scenario; the face that runs a suite (headless_suite.py) does that.
"""
