"""Refuse, saying why on stderr over two lines, after some chatter on stdout."""

import sys

print("refusing: checking the parameters")
print("refusing: the answer is no,", file=sys.stderr)
print("  and it stays no", file=sys.stderr)
sys.exit(3)
