"""Train the LiT decoder's tokenizer on the training labels before training.

The tokenizer is learned from the training set's label strings and
questions (see :mod:`.tokenizer` for why), so it can only be trained once
the dataset exists. The hook runs in ``before_train``, i.e. after
``load_from`` / ``--resume`` restored any checkpoint: a tokenizer that came
with the checkpoint is kept, so fine-tuning and resuming never re-tokenise.
The vocabulary size is fixed by the config, so the optimizer (built before
any hook runs) already holds correctly shaped embeddings.
"""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class LiTTokenizerHook(Hook):
    """Fit ``runner.model.tokenizer`` on ``train_dataloader.dataset``.

    The model must have ``tokenizer`` and ``train_tokenizer(corpus)``
    (:class:`LiTDecoder`); the dataset must have ``get_text_corpus()``
    (:class:`LiTMultiTaskDataset`).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'train_tokenizer'):
            raise TypeError(f'LiTTokenizerHook needs a model with '
                            f'train_tokenizer(), got {type(model).__name__}')
        if model.tokenizer.is_trained:
            print_log(
                f'LiTTokenizerHook: keeping {model.tokenizer} from the '
                'checkpoint',
                logger='current')
            return
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'get_text_corpus'):
            raise TypeError('LiTTokenizerHook needs a training dataset with '
                            f'get_text_corpus() (LiTMultiTaskDataset), got '
                            f'{type(dataset).__name__}')
        model.train_tokenizer(dataset.get_text_corpus())
        print_log(
            f'LiTTokenizerHook: trained {model.tokenizer}', logger='current')
