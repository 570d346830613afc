"""What queries return: JSON-ready views of the materialized state (reference §6.2 shapes).

Pure functions of the state (and of ``now_ms`` where elapsed time is shown): no I/O, no clock.
One module per noun; the names are re-exported here for the handlers.
"""

from .pipelines import pipeline_detail as pipeline_detail
from .pipelines import pipeline_summary as pipeline_summary
from .status import StatusInputs as StatusInputs
from .status import counts as counts
from .status import status_overview as status_overview
from .workspaces import workspace_detail as workspace_detail
from .workspaces import workspace_summary as workspace_summary
