"""Write the environment, temporary folder and limits this hook sees to environ.json in the project."""

import json
import os
import resource
import tempfile

with open("environ.json", "w", encoding="utf-8") as file:
    json.dump(
        {
            "environ": dict(os.environ),
            "tempdir": tempfile.gettempdir(),
            "file_size_limit": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
        },
        file,
    )

# Whatever a hook prints never passes for the renderer's answer.
print(json.dumps({"project": "/"}))
