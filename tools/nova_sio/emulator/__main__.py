# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""``python -m nova_sio.emulator``: run the emulator standalone."""

import sys

from nova_sio.emulator import cli

if __name__ == '__main__':
    sys.exit(cli.main())
