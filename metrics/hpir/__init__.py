"""The HPIR evaluate module (a package only so that pytest can tell its tests.py apart)."""
