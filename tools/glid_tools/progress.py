"""Progress of the long-running scripts under ``tools/``: mmengine's
``ProgressBar`` (done / total, tasks per second, elapsed time and ETA).

:class:`Progress` adds what the scripts need around the bar:

- it is bound to the ``sys.stdout`` of the moment it is made (mmengine's
  default ``file=sys.stdout`` is bound when mmengine is imported, so a bar
  made later would not follow a redirected stdout);
- ``enabled=False`` (``--no-progress``, library calls) makes every call a
  no-op;
- :meth:`newline` ends the bar's line before the script prints something
  else (the bar redraws itself with ``\\r``), :meth:`close` ends it for
  good;
- :meth:`update_to` moves the bar to an absolute count (progress read from
  a training subprocess's log).
"""
import re
import sys
from typing import Optional

from mmengine.utils import ProgressBar

#: mmengine's training log line of an iteration-based loop:
#: ``Iter(train) [ 40/400]``
TRAIN_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)\s*/\s*(\d+)\]')


class Progress:
    """A progress bar over ``total`` steps.

    Args:
        total (int): Number of steps.
        enabled (bool): Show the bar. Defaults to True.
        file: Where to write (default: the current ``sys.stdout``).
    """

    def __init__(self, total: int, enabled: bool = True, file=None):
        self.total = int(total)
        self.file = file if file is not None else sys.stdout
        self.bar: Optional[ProgressBar] = None
        self._open = False
        if enabled and self.total > 0:
            self.bar = ProgressBar(self.total, file=self.file)
            self._open = True

    @property
    def completed(self) -> int:
        return self.bar.completed if self.bar is not None else 0

    def update(self, num: int = 1) -> None:
        """``num`` more steps done (redraws the bar with the new ETA)."""
        if self.bar is None or num <= 0:
            return
        self.bar.update(num)
        self._open = True

    def update_to(self, completed: int) -> None:
        """Move the bar to ``completed`` steps (no-op unless it grew)."""
        self.update(min(int(completed), self.total) - self.completed)

    def newline(self) -> None:
        """End the bar's line, so that what is printed next starts on its
        own line (the next update redraws the bar below it)."""
        if self._open:
            self.file.write('\n')
            self.file.flush()
            self._open = False

    def close(self) -> None:
        self.newline()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def last_train_iter(log_file: str) -> Optional[int]:
    """The last training iteration mmengine logged in ``log_file`` (its
    ``Iter(train) [ i/N]`` lines), or None when there is none yet."""
    try:
        with open(log_file, errors='replace') as f:
            text = f.read()
    except OSError:
        return None
    found = TRAIN_ITER.findall(text)
    return int(found[-1][0]) if found else None


__all__ = ['Progress', 'last_train_iter', 'TRAIN_ITER']
