"""Start a child that sleeps, record both process ids in `pids`, then sleep past any time limit."""

import os
import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open("pids", "w", encoding="utf-8") as file:
    file.write(f"{os.getpid()} {child.pid}\n")
time.sleep(120)
