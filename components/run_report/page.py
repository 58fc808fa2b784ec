"""The run report page: one self-contained report.html with PNGs beside it.

`write_report(data, folder)` draws the figures (figures.py) into `folder`
and writes `folder/report.html`, which references them by relative file
name. The page has inline CSS only: no script, no external URL, so it opens
the same from a laptop, a file share or an archived copy.

`data` is plain Python, as executor.read_run gathers it; every entry may be
None or absent (a partial run), and the page then says what is missing:

  pipeline_name, run_id, created: strings.
  inputs: {input key: [artifact uri]}.
  ingestion: ingestion_report.json (counts, patients, duplicates, rejected,
    ignored).
  histories: {architecture: history.json rows}.
  comparison: comparison.json rows.
  training_settings: training_settings.json.
  model_info: assets.extra/model_info.json of the candidate.
  decision: blessing_decision.json.
  blessed_artifact: the ModelBlessing artifact's verdict (bool), if any.
  metrics: {(slice, model, metric): value} (results.load_metrics).
  plots, baseline_plots: {slice: {'confusion_matrices', 'calibration'}}.
  baseline: {'found': bool, 'version', 'path'} from DeployedModel.
  pushed: {'pushed': bool, 'version', 'destination'} from the Pusher.
  problems: [str], inputs that could not be read and why.
"""
import html
import math
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from absl import logging

from components.run_report import figures

REPORT_FILE = 'report.html'
MAX_LISTED = 50  # rows of rejected / duplicate / ignored files shown
OVERALL = 'overall'
CANDIDATE, BASELINE = 'candidate', 'baseline'
TEST_METRICS = (('auc', 'AUC (ROC)'), ('pr_auc', 'PR-AUC'),
                ('binary_accuracy', 'accuracy'), ('precision', 'precision'),
                ('recall', 'recall (sensitivity)'),
                ('specificity', 'specificity'),
                ('example_count', 'examples'))

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
  margin: 0 auto; max-width: 1100px; padding: 1em 2em 4em; color: #222;
  line-height: 1.4; }
h1 { margin-bottom: 0.1em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #666; margin-top: 0; }
.verdict { font-size: 3em; font-weight: 800; letter-spacing: 0.04em;
  padding: 0.3em 0.6em; border-radius: 8px; display: inline-block;
  margin: 0.3em 0; }
.verdict.yes { background: #e3f4e3; color: #17692a; border: 3px solid #2a9d4a; }
.verdict.no { background: #fbe5e3; color: #a3231b; border: 3px solid #d2473b; }
.verdict.unknown { background: #f1f1f1; color: #555; border: 3px solid #aaa; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left;
  vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.selected td { background: #fff4c2; font-weight: 600; }
td.pass { color: #17692a; font-weight: 700; }
td.fail { color: #a3231b; font-weight: 700; background: #fbe5e3; }
.missing { background: #fff8e1; border-left: 5px solid #e0a800;
  padding: 0.5em 1em; margin: 1em 0; }
.missing li { margin: 0.15em 0; }
.note { color: #555; font-size: 0.92em; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2em;
  align-items: flex-start; }
figure { margin: 0.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.88em; max-width: 540px; }
code, .path { font-family: Menlo, Consolas, monospace; font-size: 0.9em;
  word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content auto;
  gap: 0.2em 1.2em; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
"""


def esc(value: Any) -> str:
  return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
  """A number for a table cell: '—' when absent, 'n/a' when undefined."""
  if value is None:
    return '—'
  if isinstance(value, bool):
    return 'yes' if value else 'no'
  if isinstance(value, int):
    return f'{value:,}'
  if isinstance(value, float):
    if math.isnan(value):
      return 'n/a'
    if digits == 0:
      return f'{value:,.0f}'
    return f'{value:.{digits}f}'
  return esc(value)


def _count(value: Any) -> str:
  return f'{int(value):,}' if figures.is_number(value) else fmt(value)


# --- what the data says -------------------------------------------------------


def verdict(data: Dict[str, Any]) -> Optional[bool]:
  """True/False as the evaluator decided; None when there is no decision."""
  decision = data.get('decision') or {}
  if isinstance(decision.get('blessed'), bool):
    return decision['blessed']
  blessed = data.get('blessed_artifact')
  return blessed if isinstance(blessed, bool) else None


def threshold_of(data: Dict[str, Any]) -> Optional[float]:
  for value in ((data.get('decision') or {}).get('threshold'),
                (data.get('model_info') or {}).get('threshold'),
                ((data.get('model_info') or {}).get('operating_point') or {}
                 ).get('threshold')):
    if figures.is_number(value):
      return float(value)
  return None


def metric(data: Dict[str, Any], slice_name: str, model: str,
           name: str) -> Any:
  return (data.get('metrics') or {}).get((slice_name, model, name))


def matrix_at_threshold(data: Dict[str, Any], slice_name: str = OVERALL,
                        model: str = CANDIDATE) -> Optional[Dict[str, float]]:
  """The confusion matrix TFMA computed at the operating threshold."""
  matrices = metric(data, slice_name, model, 'confusion_matrix')
  if not matrices:
    return None
  threshold = threshold_of(data)
  if threshold is None or len(matrices) == 1:
    return matrices[0]
  return min(matrices, key=lambda m: abs(m.get('threshold', 0) - threshold))


def slice_rates(data: Dict[str, Any], slice_name: str,
                model: str = CANDIDATE) -> Dict[str, Any]:
  """n, positives, negatives, sensitivity, specificity, accuracy of a slice
  at the operating threshold (TFMA's metrics, else its confusion matrix)."""
  matrix = matrix_at_threshold(data, slice_name, model)
  from_matrix = figures.rates(matrix) if matrix else {}
  out = {'n': metric(data, slice_name, model, 'example_count'),
         'positives': None, 'negatives': None}
  if matrix:
    out['positives'] = matrix['tp'] + matrix['fn']
    out['negatives'] = matrix['tn'] + matrix['fp']
    if out['n'] is None:
      out['n'] = out['positives'] + out['negatives']
  for key, name in (('sensitivity', 'recall'),
                    ('specificity', 'specificity'),
                    ('accuracy', 'binary_accuracy')):
    value = metric(data, slice_name, model, name)
    if not figures.is_number(value) and from_matrix.get(key) is not None:
      value = from_matrix[key]
    out[key] = value
  return out


def _subtype_order(slice_name: str) -> Tuple[int, str]:
  value = slice_name.split('=', 1)[-1]
  order = {'bacteria': 0, 'virus': 1, 'normal': 2}
  return order.get(value, 3), value


def subtype_rows(data: Dict[str, Any]) -> List[Dict[str, Any]]:
  """Bars of the per-subtype figure: overall sensitivity and specificity,
  then sensitivity of each pneumonia subtype and specificity of NORMAL
  (the only rate a single-class slice has)."""
  metrics = data.get('metrics') or {}
  has_baseline = any(k[1] == BASELINE for k in metrics)
  slices = sorted({k[0] for k in metrics if k[0].startswith('subtype=')},
                  key=_subtype_order)
  rows = []
  for slice_name in [OVERALL] + slices:
    rates = slice_rates(data, slice_name)
    base = slice_rates(data, slice_name, BASELINE) if has_baseline else {}
    if slice_name == OVERALL:
      kinds = ('sensitivity', 'specificity')
    elif slice_name.split('=', 1)[1] == 'normal':
      kinds = ('specificity',)
    else:
      kinds = ('sensitivity',)
    for kind in kinds:
      n = rates['positives' if kind == 'sensitivity' else 'negatives']
      rows.append({'slice': slice_name, 'metric': kind,
                   'value': rates.get(kind),
                   'n': n if n is not None else rates.get('n'),
                   'baseline_value': base.get(kind)})
  return rows


# --- figures ------------------------------------------------------------------


def _safe_name(text: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('._') or 'model'


def draw_figures(data: Dict[str, Any], folder: str,
                 problems: List[str]) -> Dict[str, Optional[str]]:
  """Draws every figure the data allows; {key: PNG file name or None}.

  A figure that fails to draw is reported in `problems`, never raised.
  """
  plots = (data.get('plots') or {}).get(OVERALL) or {}
  base_plots = (data.get('baseline_plots') or {}).get(OVERALL) or {}
  comparison = {row.get('architecture'): row
                for row in data.get('comparison') or []}
  jobs: List[Tuple[str, str, Callable[[], Optional[str]]]] = []
  used = set()
  for architecture, history in (data.get('histories') or {}).items():
    name = f'training_{_safe_name(architecture)}.png'
    while name in used:
      name = name[:-4] + '_.png'
    used.add(name)
    best = (comparison.get(architecture) or {}).get('best_epoch')
    jobs.append((f'training:{architecture}', 'training curves of '
                 f'{architecture}', lambda a=architecture, h=history, n=name,
                 b=best: figures.training_curves(folder, n, a, h, b)))
  jobs += [
      ('roc', 'ROC curve', lambda: figures.roc_curve(
          folder, 'roc.png', plots.get('confusion_matrices'),
          matrix_at_threshold(data), metric(data, OVERALL, CANDIDATE, 'auc'),
          base_plots.get('confusion_matrices'),
          metric(data, OVERALL, BASELINE, 'auc'))),
      ('confusion', 'confusion matrix', lambda: figures.confusion_matrix(
          folder, 'confusion_matrix.png', matrix_at_threshold(data))),
      ('subtypes', 'per-subtype rates', lambda: figures.subtype_rates(
          folder, 'subtypes.png', subtype_rows(data) if data.get('metrics')
          else [])),
      ('calibration', 'calibration', lambda: figures.calibration(
          folder, 'calibration.png', plots.get('calibration'))),
      ('ingestion', 'ingestion counts', lambda: figures.ingestion_counts(
          folder, 'ingestion.png', (data.get('ingestion') or {}).get(
              'counts'))),
  ]
  drawn = {}
  for key, title, draw in jobs:
    try:
      drawn[key] = draw()
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('Run report: the %s figure failed: %r', title, e)
      problems.append(f'the {title} figure could not be drawn: '
                      f'{type(e).__name__}: {e}')
      drawn[key] = None
  return drawn


# --- HTML pieces --------------------------------------------------------------


def _img(name: Optional[str], alt: str, caption: str = '',
         missing: str = '') -> str:
  if not name:
    return f'<p class="note">No {esc(alt)} figure: {esc(missing)}</p>'
  cap = f'<figcaption>{caption}</figcaption>' if caption else ''
  return (f'<figure><img src="{esc(name)}" alt="{esc(alt)}">{cap}'
          '</figure>')


def _table(headers: List[str], rows: List[List[str]],
           row_classes: Optional[List[str]] = None) -> str:
  """A table; cells are HTML already (escape before)."""
  out = ['<table><tr>', ''.join(f'<th>{h}</th>' for h in headers), '</tr>']
  for i, row in enumerate(rows):
    cls = (row_classes or [''] * len(rows))[i]
    out.append(f'<tr class="{cls}">' if cls else '<tr>')
    for cell in row:
      if isinstance(cell, tuple):  # (html, css class)
        out.append(f'<td class="{cell[1]}">{cell[0]}</td>')
      else:
        out.append(f'<td>{cell}</td>')
    out.append('</tr>')
  out.append('</table>')
  return ''.join(out)


def _truncated(items: List[Any], what: str, source: str) -> Tuple[List[Any],
                                                                   str]:
  if len(items) <= MAX_LISTED:
    return items, ''
  rest = len(items) - MAX_LISTED
  return items[:MAX_LISTED], (
      f'<p class="note">… and {rest:,} more {esc(what)} not listed here '
      f'(all {len(items):,} are in {esc(source)}).</p>')


def _decision_section(data: Dict[str, Any]) -> str:
  decision = data.get('decision')
  blessed = verdict(data)
  out = ['<h2 id="decision">Blessing decision</h2>']
  checks = (decision or {}).get('checks') or []
  failed = [f"{c.get('metric')} ({c.get('kind')})" for c in checks
            if not c.get('passed')]
  if blessed is True:
    out.append('<p><b>Blessed</b>: every check passed.</p>' if not failed
               else '<p><b>Blessed</b> by TFMA although the checks below '
               f"list failures: {esc(', '.join(failed))}.</p>")
  elif blessed is False:
    out.append('<p><b>Rejected</b>: ' + (
        f"failed {esc(', '.join(failed))}." if failed else
        'TFMA\'s validation failed although every listed check passed.')
               + '</p>')
  else:
    if decision:
      out.append('<p>The evaluation recorded no verdict (TFMA\'s validation '
                 'result is missing), so the model was neither blessed nor '
                 'rejected.</p>')
    else:
      out.append('<p>The model was not evaluated in this run (no blessing '
                 'decision), so it was neither blessed nor rejected.</p>')
  artifact = data.get('blessed_artifact')
  if (isinstance(artifact, bool) and decision
      and isinstance(decision.get('blessed'), bool)
      and artifact != decision['blessed']):
    out.append('<p class="missing">The ModelBlessing artifact disagrees with '
               'blessing_decision.json (artifact says '
               f'{"blessed" if artifact else "not blessed"}); the Pusher '
               'follows the artifact.</p>')
  if decision:
    rows, classes = [], []
    for check in checks:
      kind = check.get('kind')
      bound = check.get('bound')
      if kind == 'change':
        rule = f'candidate − deployed ≥ {fmt(bound)}'
      else:
        rule = f'≥ {fmt(bound)}'
      passed = check.get('passed')
      rows.append([
          f"<b>{esc(check.get('metric'))}</b>", esc(kind), esc(rule),
          (fmt(check.get('value')), 'num'),
          (fmt(check.get('baseline_value')), 'num'),
          (fmt(check.get('difference')), 'num'),
          ('pass', 'pass') if passed else ('FAIL', 'fail'),
          esc(check.get('note') or '')])
      classes.append('')
    if rows:
      out.append('<p>Every condition checked on the overall test slice at '
                 'the operating threshold:</p>')
      out.append(_table(['metric', 'kind', 'bound', 'value',
                         'deployed model', 'difference', 'result', 'note'],
                        rows, classes))
    else:
      out.append('<p class="note">The decision lists no checks.</p>')
  elif blessed is not None:
    out.append('<p class="note">blessing_decision.json is missing: the '
               'verdict comes from the ModelBlessing artifact; the checks '
               'behind it are unknown.</p>')
  out.append(_baseline_paragraph(data))
  out.append(_push_paragraph(data))
  return '\n'.join(out)


def _baseline_paragraph(data: Dict[str, Any]) -> str:
  decision = data.get('decision') or {}
  baseline = decision.get('baseline')
  artifact = data.get('baseline')
  if baseline:
    return ('<p><b>Compared with</b> the deployed model, version '
            f"<b>{esc(baseline.get('version'))}</b> "
            f"(<span class=\"path\">{esc(baseline.get('path'))}</span>).</p>")
  if artifact and artifact.get('found'):
    return ('<p><b>Deployed model</b>: version '
            f"<b>{esc(artifact.get('version'))}</b> "
            f"(<span class=\"path\">{esc(artifact.get('path'))}</span>)"
            + ('' if data.get('decision') else '; the candidate was not '
               'evaluated against it in this run') + '.</p>')
  if data.get('decision') or (artifact and not artifact.get('found')):
    return ('<p><b>Baseline</b>: nothing deployed: judged on value '
            'thresholds alone.</p>')
  return ('<p><b>Baseline</b>: unknown (no DeployedModel output and no '
          'evaluation in this run).</p>')


def _push_paragraph(data: Dict[str, Any]) -> str:
  pushed = data.get('pushed')
  baseline = data.get('baseline') or {}
  served = (f" (version {esc(baseline['version'])} keeps serving)"
            if baseline.get('found') and baseline.get('version') else '')
  if pushed is None:
    return ('<p><b>Push</b>: the run did not reach the push stage (no '
            'pushed model): not pushed; the served version is unchanged'
            f'{served}.</p>')
  if pushed.get('pushed'):
    return ('<p><b>Pushed</b> as version '
            f"<b>{esc(pushed.get('version'))}</b> to "
            f"<span class=\"path\">{esc(pushed.get('destination'))}</span>."
            '</p>')
  return ('<p><b>Push</b>: not pushed; the served version is unchanged'
          f'{served}.</p>')


def _operating_section(data: Dict[str, Any]) -> str:
  info = data.get('model_info') or {}
  point = info.get('operating_point') or {}
  threshold = threshold_of(data)
  out = ['<h2 id="threshold">Operating threshold</h2>']
  if threshold is None:
    out.append('<p class="note">Unknown: the model and its model_info.json '
               'are missing.</p>')
    return '\n'.join(out)
  out.append('<dl class="facts">')
  out.append(f'<dt>threshold</dt><dd><b>{threshold:.4f}</b> (predict '
             'PNEUMONIA when probability ≥ threshold)</dd>')
  if info.get('architecture'):
    out.append(f"<dt>architecture</dt><dd>{esc(info['architecture'])}</dd>")
  if point:
    out.append('<dt>chosen on</dt><dd>the eval split, for a target '
               f"sensitivity of {fmt(point.get('target_sensitivity'), 2)}"
               '</dd>')
    out.append('<dt>eval sensitivity</dt><dd>'
               f"{fmt(point.get('sensitivity'), 3)} "
               f"({_count(point.get('positives'))} PNEUMONIA images)</dd>")
    out.append('<dt>eval specificity</dt><dd>'
               f"{fmt(point.get('specificity'), 3)} "
               f"({_count(point.get('negatives'))} NORMAL images)</dd>")
  else:
    out.append('<dt>chosen on</dt><dd class="note">unknown (no '
               'operating_point in model_info.json)</dd>')
  out.append('</dl>')
  return '\n'.join(out)


def _metrics_section(data: Dict[str, Any], drawn: Dict[str, Optional[str]]
                     ) -> str:
  metrics = data.get('metrics')
  out = ['<h2 id="test">Test split</h2>']
  if not metrics:
    out.append('<p class="missing">No test metrics: the evaluation is '
               'missing from this run.</p>')
    return '\n'.join(out)
  has_baseline = any(k[1] == BASELINE for k in metrics)
  rows = []
  for name, label in TEST_METRICS:
    value = metric(data, OVERALL, CANDIDATE, name)
    digits = 0 if name == 'example_count' else 4
    row = [esc(label), (fmt(value, digits) if value is not None
                        else '<i>missing</i>', 'num')]
    if has_baseline:
      base = metric(data, OVERALL, BASELINE, name)
      diff = (value - base if figures.is_number(value)
              and figures.is_number(base) else None)
      row += [(fmt(base, digits), 'num'),
              (('+' if diff and diff > 0 else '') + fmt(diff, digits)
               if diff is not None else '—', 'num')]
    rows.append(row)
  headers = ['metric', 'candidate'] + (['deployed model', 'difference']
                                       if has_baseline else [])
  threshold = threshold_of(data)
  out.append('<p>Overall, at the operating threshold'
             + (f' {threshold:.4f}' if threshold is not None else '')
             + ('' if has_baseline else '; nothing deployed to compare '
                'with') + ':</p>')
  out.append(_table(headers, rows))
  matrix = matrix_at_threshold(data)
  out.append('<div class="figures">')
  out.append(_img(drawn.get('roc'), 'ROC curve',
                  'ROC of the test split from TFMA\'s confusion matrices over '
                  'thresholds; the red dot is the confusion matrix at the '
                  'operating threshold.' + (' Dashed: the deployed model.'
                                            if has_baseline else ''),
                  'no confusion matrices over thresholds (TFMA plots missing '
                  'or a class absent from the test split).'))
  out.append(_img(drawn.get('confusion'), 'confusion matrix',
                  'Test split at the operating threshold (counts; percent of '
                  'the true class).', 'no confusion matrix at the threshold.'))
  out.append('</div>')
  if matrix is None:
    out.append('<p class="note">Metric confusion_matrix is missing.</p>')
  return '\n'.join(out)


def _slices_section(data: Dict[str, Any], drawn: Dict[str, Optional[str]]
                    ) -> str:
  metrics = data.get('metrics')
  out = ['<h2 id="slices">Per subtype and slice</h2>']
  if not metrics:
    out.append('<p class="note">No sliced metrics (evaluation missing).</p>')
    return '\n'.join(out)
  out.append(_img(drawn.get('subtypes'), 'per-subtype rates',
                  'Sensitivity (recall) of each pneumonia subtype and '
                  'specificity of NORMAL at the operating threshold; n is the '
                  'number of images the rate is measured on.',
                  'no subtype slices.'))
  out.append('<p class="note">A subtype slice holds one class only: the '
             'bacteria and virus slices have no NORMAL image, so only their '
             'sensitivity is defined; the normal slice has no PNEUMONIA '
             'image, so only its specificity is (n/a marks the undefined '
             'one).</p>')
  has_baseline = any(k[1] == BASELINE for k in metrics)
  slices = sorted({k[0] for k in metrics},
                  key=lambda s: (s != OVERALL, s.split('=')[0],
                                 _subtype_order(s)))
  rows = []
  for slice_name in slices:
    rates = slice_rates(data, slice_name)
    row = [f'<code>{esc(slice_name)}</code>', (_count(rates['n']), 'num'),
           (fmt(rates['sensitivity'], 3), 'num'),
           (fmt(rates['specificity'], 3), 'num'),
           (fmt(rates['accuracy'], 3), 'num')]
    if has_baseline:
      base = slice_rates(data, slice_name, BASELINE)
      row += [(fmt(base['sensitivity'], 3), 'num'),
              (fmt(base['specificity'], 3), 'num')]
    rows.append(row)
  headers = ['slice', 'n', 'sensitivity', 'specificity', 'accuracy']
  if has_baseline:
    headers += ['deployed sensitivity', 'deployed specificity']
  out.append(_table(headers, rows))
  return '\n'.join(out)


def _calibration_section(drawn: Dict[str, Optional[str]]) -> str:
  return '\n'.join([
      '<h2 id="calibration">Calibration</h2>',
      _img(drawn.get('calibration'), 'calibration',
           'Reliability diagram of the test split: the fraction of PNEUMONIA '
           'among images with a similar predicted probability; on the '
           'diagonal the probabilities can be read as risks.',
           'no calibration buckets (TFMA plots missing).')])


def _training_section(data: Dict[str, Any], drawn: Dict[str, Optional[str]]
                      ) -> str:
  out = ['<h2 id="training">Training</h2>']
  comparison = data.get('comparison')
  if comparison:
    rows, classes = [], []
    for row in comparison:
      seconds = row.get('seconds')
      rows.append([
          esc(row.get('architecture')),
          (fmt(row.get('val_auc')), 'num'),
          (fmt(row.get('val_accuracy')), 'num'),
          (fmt(row.get('val_loss')), 'num'),
          (fmt(row.get('train_auc')), 'num'),
          (_count(row.get('best_epoch')), 'num'),
          (_count(row.get('epochs_run')), 'num'),
          (_count(row.get('parameters')), 'num'),
          (f'{seconds / 60:.1f}' if figures.is_number(seconds) else '—',
           'num'),
          '<b>selected</b>' if row.get('selected') else ''])
      classes.append('selected' if row.get('selected') else '')
    out.append('<p>Architectures compared on the validation (eval) split; '
               'the selected one (highlighted) was exported.</p>')
    out.append(_table(['architecture', 'val AUC', 'val accuracy', 'val loss',
                       'train AUC', 'best epoch', 'epochs run', 'parameters',
                       'minutes', ''], rows, classes))
  else:
    out.append('<p class="missing">No architecture comparison '
               '(comparison.json missing).</p>')
  settings = data.get('training_settings')
  if settings:
    keys = ('profile', 'architectures', 'image_size', 'epochs', 'batch_size',
            'learning_rate', 'patience', 'class_weights',
            'target_sensitivity', 'shuffle_labels', 'seed')
    shown = ', '.join(f'{esc(k)}={esc(settings[k])}' for k in keys
                      if k in settings)
    out.append(f'<p class="note">Settings: {shown}.</p>')
    if settings.get('shuffle_labels'):
      out.append('<p class="missing">This model was trained on permuted '
                 'labels (shuffle_labels): a negative control that should '
                 'not be blessed.</p>')
  histories = data.get('histories') or {}
  if histories:
    out.append('<div class="figures">')
    for architecture in histories:
      out.append(_img(drawn.get(f'training:{architecture}'),
                      f'training curves of {architecture}',
                      f'{esc(architecture)}: train vs validation per epoch; '
                      'dashed green: the best epoch (highest validation AUC), '
                      'whose weights were kept.', 'no epochs recorded.'))
    out.append('</div>')
  else:
    out.append('<p class="note">No training history (history.json) '
               'found.</p>')
  return '\n'.join(out)


def _ingestion_section(data: Dict[str, Any],
                       drawn: Dict[str, Optional[str]]) -> str:
  out = ['<h2 id="data">Data</h2>']
  report = data.get('ingestion')
  if not report:
    out.append('<p class="missing">No ingestion report '
               '(ingestion_report.json missing).</p>')
    return '\n'.join(out)
  counts = report.get('counts') or {}
  patients = report.get('patients') or {}
  splits = [s for s in ('train', 'eval', 'test') if s in counts]
  splits += sorted(s for s in counts if s not in splits and s != 'all')
  if 'all' in counts:
    splits.append('all')
  rows = []
  for split in splits:
    c = counts[split] or {}
    total = c.get('total')
    if total is None:
      total = sum(v for k, v in c.items() if figures.is_number(v))
    p = (patients.get(split) if split != 'all'
         else sum(v for v in patients.values() if figures.is_number(v))
         if patients else None)
    rows.append([f'<b>{esc(split)}</b>' if split == 'all' else esc(split),
                 (_count(c.get('NORMAL', 0)), 'num'),
                 (_count(c.get('PNEUMONIA', 0)), 'num'),
                 (_count(total), 'num'), (_count(p), 'num')])
  out.append('<div class="figures"><div>')
  out.append(_table(['split', 'NORMAL', 'PNEUMONIA', 'total', 'patients'],
                    rows))
  out.append('</div>')
  out.append(_img(drawn.get('ingestion'), 'ingestion counts', '',
                  'no counts.'))
  out.append('</div>')
  source = 'ingestion_report.json'
  duplicates = report.get('duplicates') or []
  out.append(f'<h3>Duplicates dropped: {len(duplicates):,}</h3>')
  if duplicates:
    shown, more = _truncated(duplicates, 'duplicates', source)
    out.append(_table(['path', 'identical to (kept)'], [
        [f'<span class="path">{esc(d.get("path"))}</span>',
         f'<span class="path">{esc(d.get("duplicate_of"))}</span>']
        for d in shown]) + more)
  rejected = report.get('rejected') or []
  out.append(f'<h3>Files rejected: {len(rejected):,}</h3>')
  if rejected:
    shown, more = _truncated(rejected, 'rejected files', source)
    out.append(_table(['path', 'reason'], [
        [f'<span class="path">{esc(r.get("path"))}</span>',
         esc(r.get('reason'))] for r in shown]) + more)
  ignored = report.get('ignored') or {}
  paths = ignored.get('paths') or []
  count = ignored.get('count', len(paths))
  out.append(f'<h3>Entries ignored: {_count(count)}</h3>')
  if paths:
    shown, _ = _truncated(paths, 'ignored entries', source)
    listed = ''.join(f'<li class="path">{esc(p)}</li>' for p in shown)
    rest = (count - len(shown)) if figures.is_number(count) else 0
    out.append(f'<ul>{listed}</ul>')
    if rest > 0:
      out.append(f'<p class="note">… and {rest:,} more not listed.</p>')
  return '\n'.join(out)


def _missing_section(data: Dict[str, Any], problems: List[str]) -> str:
  notes = []
  if not data.get('ingestion'):
    notes.append('ingestion report (examples)')
  if not data.get('comparison') and not data.get('histories'):
    notes.append('training outputs (model_run)')
  if not data.get('model_info'):
    notes.append('the trained model and its model_info.json (model)')
  if not data.get('decision') and verdict(data) is None:
    notes.append('evaluation and blessing decision: the run stopped before '
                 'evaluation or it failed')
  elif not data.get('metrics'):
    notes.append('TFMA metrics of the evaluation')
  elif not data.get('plots'):
    notes.append('TFMA plots (ROC and calibration)')
  if data.get('pushed') is None:
    notes.append('pushed model: the run stopped before the push stage')
  items = [f'<li>{esc(n)}</li>' for n in notes]
  items += [f'<li>{esc(p)}</li>' for p in problems]
  if not items:
    return ''
  return ('<div class="missing"><b>Missing from this run</b> (the report '
          'shows what there is):<ul>' + ''.join(items) + '</ul></div>')


def _header(data: Dict[str, Any]) -> str:
  blessed = verdict(data)
  word = {True: 'BLESSED', False: 'NOT BLESSED', None: 'NO DECISION'}[blessed]
  css = {True: 'yes', False: 'no', None: 'unknown'}[blessed]
  info = data.get('model_info') or {}
  pushed = data.get('pushed')
  if pushed and pushed.get('pushed'):
    push = f"pushed as version {esc(pushed.get('version'))}"
  else:
    push = 'not pushed'
  threshold = threshold_of(data)
  facts = [f"architecture {esc(info['architecture'])}"
           if info.get('architecture') else None,
           f'threshold {threshold:.4f}' if threshold is not None else None,
           push]
  return ('<h1>Run report: ' + esc(data.get('pipeline_name') or 'pipeline')
          + '</h1>'
          f"<p class=\"sub\">run {esc(data.get('run_id', ''))} · "
          f"{esc(data.get('created', ''))}</p>"
          f'<div class="verdict {css}">{word}</div>'
          f"<p>{' · '.join(f for f in facts if f)}</p>"
          '<p class="note">' + ' · '.join(
              f'<a href="#{anchor}">{label}</a>' for anchor, label in (
                  ('decision', 'decision'), ('threshold', 'threshold'),
                  ('test', 'test split'), ('slices', 'subtypes'),
                  ('calibration', 'calibration'), ('training', 'training'),
                  ('data', 'data'))) + '</p>')


def _inputs_section(data: Dict[str, Any]) -> str:
  inputs = data.get('inputs') or {}
  if not inputs:
    return ''
  rows = [[esc(key), '<br>'.join(f'<span class="path">{esc(u)}</span>'
                                 for u in uris) or '<i>not given</i>']
          for key, uris in sorted(inputs.items())]
  return ('<h2 id="inputs">Artifacts read</h2>' + _table(['input', 'uri'],
                                                         rows))


def render(data: Dict[str, Any], drawn: Dict[str, Optional[str]],
           problems: List[str]) -> str:
  """The HTML page for `data` with the figures `drawn`."""
  title = (f"{data.get('pipeline_name') or 'pipeline'} run "
           f"{data.get('run_id', '')}")
  body = [
      _header(data),
      _missing_section(data, problems),
      _decision_section(data),
      _operating_section(data),
      _metrics_section(data, drawn),
      _slices_section(data, drawn),
      _calibration_section(drawn),
      _training_section(data, drawn),
      _ingestion_section(data, drawn),
      _inputs_section(data),
  ]
  return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          f'<title>{esc(title)}</title>'
          '<meta name="viewport" content="width=device-width, '
          'initial-scale=1">'
          f'<style>{_CSS}</style></head><body>\n'
          + '\n'.join(part for part in body if part)
          + '\n</body></html>\n')


def write_report(data: Dict[str, Any], folder: str) -> str:
  """Draws the figures into `folder` and writes report.html; its path."""
  problems = list(data.get('problems') or [])
  drawn = draw_figures(data, folder, problems)
  page = render(data, drawn, problems)
  path = os.path.join(folder, REPORT_FILE)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(page)
  return path
