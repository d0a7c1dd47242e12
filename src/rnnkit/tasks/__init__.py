"""One module per task. Each offers the same small contract, dispatched by the dict below:
TARGET, DEFAULT_LOWERCASE, DEFAULTS (options the task sets unless the user
does), read(path, data_config), gold(example), a model class with
loss(batch, reduction) and predict(batch), and decode(output, labels).
A task may also define METRIC (the dev score to select on; default accuracy),
check_options(data, model, train), training_data(sets, vocab, labels, train_config)
(default: the encoded train set) and evaluate(model, examples) (default: api.Model's)."""

from rnnkit.tasks import classify, lm, tag

TASKS = {"classify": classify, "tag": tag, "lm": lm}
MODELS = {"classify": classify.Classifier, "tag": tag.Tagger, "lm": lm.LanguageModel}
