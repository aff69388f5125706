"""Long-running scripts under tools/ show progress: mmengine's
``ProgressBar`` (done / total, task/s, elapsed, ETA) through
:class:`glid_tools.progress.Progress`, and GPU-sized benchmark defaults
become CPU-sized without a GPU."""
import importlib.util
import io
import json
import os.path as osp
import re
import sys

import pytest

from glid_tools.progress import Progress, last_train_iter

BAR = re.compile(r'\] (\d+)/(\d+), [\d.]+ task/s, elapsed: \d+s, ETA:\s+\d+s')


def _script(project_root, rel):
    """Import tools/<rel>.py as a module (its main(argv))."""
    path = osp.join(project_root, 'tools', rel + '.py')
    spec = importlib.util.spec_from_file_location(
        'progress_' + rel.replace('/', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _counts(text):
    """``(done, total)`` of every bar redraw in ``text``."""
    return [(int(a), int(b)) for a, b in BAR.findall(text)]


def test_progress_bar_counts_and_ends_its_line():
    out = io.StringIO()
    bar = Progress(4, file=out)
    bar.update()
    bar.update_to(3)
    bar.update_to(2)  # never backwards
    bar.update_to(10)  # never past the total
    bar.newline()
    out.write('next line')
    assert _counts(out.getvalue()) == [(1, 4), (3, 4), (4, 4)]
    assert out.getvalue().endswith('\nnext line')
    bar.close()  # nothing written since the last newline
    assert out.getvalue().endswith('\nnext line')

    quiet = io.StringIO()
    off = Progress(4, enabled=False, file=quiet)
    off.update(2)
    off.close()
    assert quiet.getvalue() == '' and off.completed == 0


def test_last_train_iter_reads_mmengine_log_lines(tmp_path):
    log = tmp_path / 'train.log'
    assert last_train_iter(str(log)) is None  # not written yet
    log.write_text('12/06 10:00:00 - mmengine - INFO - Iter(train) [ 10/400]'
                   '  lr: 1.0e-04  loss: 0.9\n'
                   '12/06 10:00:05 - mmengine - INFO - Iter(train) [ 20/400]'
                   '  lr: 1.0e-04  loss: 0.8\n'
                   '12/06 10:00:06 - mmengine - INFO - Saving checkpoint\n')
    assert last_train_iter(str(log)) == 20


def test_glid_demo_bar_follows_the_training_log(tmp_path, capsys):
    """The demo's runner moves the bar by the iterations a training
    subprocess logs while it runs, then to the run's total."""
    from glid_tools.glid_demo import _run
    child = ('import sys, time\n'
             'for i in (2, 4):\n'
             '    print(f"Iter(train) [{i:3d}/6]  loss: 1.0", flush=True)\n'
             '    time.sleep(1.0)\n')
    bar = Progress(10)  # e.g. 6 iterations of this run + 4 of a later one
    _run([sys.executable, '-c', child],
         str(tmp_path),
         str(tmp_path / 'train.log'),
         bar,
         iters=6,
         poll_s=0.1)
    out = capsys.readouterr().out
    counts = _counts(out)
    # moved while the run was going (a second between the log lines), then
    # to the run's 6 iterations when it ended
    assert (2, 10) in counts or (4, 10) in counts, out
    assert counts == sorted(counts) and counts[-1] == (6, 10), out
    assert '[glid-demo]   done in' in out.splitlines()[-1]


@pytest.mark.slow
def test_lit_decoding_bar_then_results_on_their_own_line(
        project_root, tmp_path, capsys):
    tool = _script(project_root, 'benchmark/lit_decoding')
    tool.main([
        '--arch', 'tiny', '--batch-size', '2', '--seq-len', '4',
        '--memory-tokens', '4', '--memory-dims', '16', '--vocab-size', '50',
        '--num-beams', '2', '--out-dir',
        str(tmp_path)
    ])
    out = capsys.readouterr().out
    assert _counts(out)[-1] == (3, 3), out
    assert '\n{' in out  # the JSON starts on a new line, not after "ETA"


@pytest.mark.slow
def test_detection_inference_cpu_default_and_bar(project_root, tmp_path,
                                                 capsys):
    """Without --arch on the CPU the nano models run (Swin-B at 800x1333
    would take far longer than minutes on 2 cores); a bar over the
    models."""
    tool = _script(project_root, 'benchmark/glid_detection_inference')
    argv = [
        '--device', 'cpu', '--iters', '1', '--warmup', '0', '--no-flops',
        '--peers', 'detr', '--out-dir',
        str(tmp_path)
    ]
    assert tool.main(argv) == 0
    out = capsys.readouterr().out
    assert _counts(out)[-1] == (2, 2), out  # GLID + DETR
    result = json.loads(
        (tmp_path / 'glid_detection_inference.json').read_text())
    assert result['settings']['arch'] == 'nano'
    assert result['settings']['img_size'] == '128x128'


@pytest.mark.slow
def test_model_complexity_bar(project_root, tmp_path, capsys):
    tool = _script(project_root, 'benchmark/model_complexity')
    argv = [
        '--configs', 'glid-semseg_swin-nano_*', '--no-peers', '--out-dir',
        str(tmp_path)
    ]
    assert tool.main(argv) == 0
    out = capsys.readouterr().out
    assert _counts(out)[-1] == (1, 1), out
    quiet = _script(project_root, 'benchmark/model_complexity')
    assert quiet.main(argv + ['--no-progress']) == 0
    assert not _counts(capsys.readouterr().out)
