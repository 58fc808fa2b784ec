"""Test and benchmark helpers: real images in place, CLI runs, MLMD, a KFP
fake server, a headless browser.

The top floor (tests/test_import_floors.py): tests, unit tests beside the code,
conftest.py and bench/ import it; product code never does, and it is neither
packaged (setup.py) nor copied into the image (.dockerignore).
"""
