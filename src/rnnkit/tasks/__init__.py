"""The four tasks, one record each (tasks/task.py): TASKS[name] is all that the one train / load /
Model path (api.py, model.py) knows of a task."""

from rnnkit.tasks import classify, lm, seq2seq, tag
from rnnkit.tasks.task import Task

TASKS: dict[str, Task] = {t.name: t for t in (classify.TASK, tag.TASK, lm.TASK, seq2seq.TASK)}
