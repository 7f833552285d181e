# SPDX-License-Identifier: MIT OR Apache-2.0
import sys

from memlog.cli import main

sys.exit(main())
