import os
import sys

# the table of units lives beside the tests
sys.path.insert(0, os.path.dirname(__file__))
