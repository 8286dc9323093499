import sys

from cep.cli.main import main

sys.exit(main())
