"""Keep test runs from leaving bytecode next to the Salt modules, which operators copy to file_roots."""

import sys

sys.dont_write_bytecode = True
