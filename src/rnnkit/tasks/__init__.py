"""One module per task. Each offers the same small contract, dispatched by the dict below:
TARGET, DEFAULT_LOWERCASE, DEFAULTS (options the task sets unless the user
does), read(path, data_config), gold(example), a model class with
loss(batch, reduction) and predict(batch), and decode(output, labels)."""

from rnnkit.tasks import classify, tag

TASKS = {"classify": classify, "tag": tag}
MODELS = {"classify": classify.Classifier, "tag": tag.Tagger}
