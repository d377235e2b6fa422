"""Entry point of the toxsieve Dataflow Flex Template (FLEX_TEMPLATE_PYTHON_PY_FILE).

The template's parameters (metadata.json) become `toxsieve run` arguments in
toxsieve.pipelines.cli.flex_template; Dataflow's own options pass through to Beam.
"""

import sys

from toxsieve.pipelines.cli.flex_template import main

if __name__ == "__main__":
    sys.exit(main())
