"""The run report's figures: PNG files drawn with matplotlib (Agg).

Every function takes plain Python data (lists and dicts as the pipeline's
JSON files and components/evaluator/results.py give them), writes one PNG
and returns its file name, or returns None when there is nothing to draw.
Figures are built with the object-oriented API (no pyplot), so nothing here
touches matplotlib's global state or needs a display.
"""
import math
import os
from typing import Any, Dict, List, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
LABEL_NAMES = ('NORMAL', 'PNEUMONIA')
CANDIDATE_COLOR = '#1f6fb4'
BASELINE_COLOR = '#888888'
EXTERNAL_COLOR = '#c2410c'  # the external cohort, beside CANDIDATE_COLOR
EXTERNAL_BASELINE_COLOR = '#e8a87c'
TRAIN_COLOR = '#e07b00'
VALIDATION_COLOR = '#1f6fb4'


def is_number(value: Any) -> bool:
  """True for a finite int or float (not bool, None or NaN)."""
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _new_figure(width: float, height: float) -> Figure:
  figure = Figure(figsize=(width, height), dpi=DPI)
  FigureCanvasAgg(figure)
  return figure


def _save(figure: Figure, folder: str, name: str) -> str:
  figure.savefig(os.path.join(folder, name), dpi=DPI, bbox_inches='tight')
  return name


def rates(matrix: Dict[str, float]) -> Dict[str, Optional[float]]:
  """Sensitivity (TPR), specificity and false positive rate of a confusion
  matrix {'tp', 'fp', 'tn', 'fn'}; None where a class is absent."""
  tp, fp = matrix.get('tp', 0.0), matrix.get('fp', 0.0)
  tn, fn = matrix.get('tn', 0.0), matrix.get('fn', 0.0)
  positives, negatives = tp + fn, tn + fp
  sensitivity = tp / positives if positives else None
  specificity = tn / negatives if negatives else None
  return {'sensitivity': sensitivity, 'specificity': specificity,
          'fpr': None if specificity is None else 1.0 - specificity}


def roc_points(matrices: Sequence[Dict[str, float]]):
  """(false positive rates, true positive rates) of confusion matrices over
  thresholds, ordered along the curve; None if a class is absent."""
  points = []
  for matrix in matrices:
    r = rates(matrix)
    if r['sensitivity'] is None or r['fpr'] is None:
      return None
    points.append((r['fpr'], r['sensitivity']))
  if not points:
    return None
  points.sort()
  return [p[0] for p in points], [p[1] for p in points]


def best_epoch(history: List[Dict[str, Any]]) -> Optional[int]:
  """The epoch with the highest validation AUC (earliest on ties)."""
  scored = [row for row in history if is_number(row.get('val_auc'))]
  if not scored:
    return None
  return max(scored, key=lambda r: (r['val_auc'], -r['epoch']))['epoch']


def training_curves(folder: str, name: str, architecture: str,
                    history: List[Dict[str, Any]],
                    best: Optional[int] = None) -> Optional[str]:
  """Loss and AUC per epoch, train vs validation, best epoch marked.

  Args:
    folder: where the PNG goes.
    name: its file name.
    architecture: shown in the title.
    history: rows of <architecture>/history.json (epoch, phase, loss, auc,
      val_loss, val_auc, ...).
    best: the best epoch (the comparison table's); derived from val_auc if
      None.
  """
  rows = sorted((r for r in history if is_number(r.get('epoch'))),
                key=lambda r: r['epoch'])
  if not rows:
    return None
  if best is None:
    best = best_epoch(rows)
  figure = _new_figure(9, 3.2)
  axes = figure.subplots(1, 2)
  for ax, key, title in ((axes[0], 'loss', 'loss'), (axes[1], 'auc', 'AUC')):
    for prefix, label, color in (('', 'train', TRAIN_COLOR),
                                 ('val_', 'validation', VALIDATION_COLOR)):
      points = [(r['epoch'], r[prefix + key]) for r in rows
                if is_number(r.get(prefix + key))]
      if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], 'o-',
                color=color, label=label, markersize=4)
    if best is not None:
      ax.axvline(best, color='#2a9d2a', linestyle='--', linewidth=1.2,
                 label=f'best epoch ({best})')
    phases = sorted({r.get('phase', 1) for r in rows})
    for phase in phases[1:]:
      start = min(r['epoch'] for r in rows if r.get('phase', 1) == phase)
      ax.axvline(start - 0.5, color='#999999', linestyle=':', linewidth=1,
                 label=f'phase {phase} starts')
    ax.set_title(f'{architecture}: {title}')
    ax.set_xlabel('epoch')
    ax.grid(alpha=0.3)
    epochs = [r['epoch'] for r in rows]
    if len(epochs) <= 20:
      ax.set_xticks(epochs)
  axes[0].legend(fontsize=8)
  return _save(figure, folder, name)


def _operating_point(ax, point: Optional[Dict[str, float]], label: str,
                     color: str, marker: str, place) -> None:
  """Marks the confusion matrix at the threshold on an ROC, annotated with
  its rates where place(rates) says: (offset in points, ha, va)."""
  if not point:
    return
  r = rates(point)
  if r['sensitivity'] is None or r['fpr'] is None:
    return
  threshold = point.get('threshold')
  ax.plot([r['fpr']], [r['sensitivity']], marker, color=color,
          markersize=9, zorder=5, label=(
              label + (f' (t={threshold:.3f})' if is_number(threshold)
                       else '')))
  offset, ha, va = place(r)
  ax.annotate(f"sens {r['sensitivity']:.2f}\nspec {r['specificity']:.2f}",
              (r['fpr'], r['sensitivity']), textcoords='offset points',
              xytext=offset, fontsize=8, color=color, ha=ha, va=va)


def _single_place(r):
  """The one operating point of a single-cohort ROC (left aligned)."""
  return ((-70 if r['fpr'] > 0.6 else 10, -30 if r['sensitivity'] > 0.3
           else 12), 'left', 'baseline')


# Two cohorts: left of its point at its height is above a curve and below
# right is under it (an ROC rises), so neither text crosses its own curve.
def _left_place(r):
  if r['fpr'] < 0.15:  # no room on the left
    return (8, -8), 'left', 'top'
  return (-9, 0), 'right', 'center'


def _below_right_place(r):
  if r['fpr'] > 0.8:  # no room on the right
    return (-9, 0), 'right', 'center'
  return (8, -8), 'left', 'top'


def roc_curve(folder: str, name: str,
              matrices: Optional[Sequence[Dict[str, float]]],
              operating_point: Optional[Dict[str, float]] = None,
              auc: Optional[float] = None,
              baseline_matrices: Optional[Sequence[Dict[str, float]]] = None,
              baseline_auc: Optional[float] = None,
              external: Optional[Dict[str, Any]] = None) -> Optional[str]:
  """ROC of the test split from confusion matrices over thresholds; with
  `external`, the external cohort's ROC on the same axes.

  Args:
    folder: where the PNG goes.
    name: its file name.
    matrices: the candidate's [{'threshold', 'tp', 'fp', 'tn', 'fn'}].
    operating_point: the confusion matrix at the model's threshold, marked.
    auc: shown in the legend.
    baseline_matrices: the deployed model's, drawn dashed, if any.
    baseline_auc: shown in the legend.
    external: the external cohort's {'matrices', 'operating_point', 'auc',
      'baseline_matrices', 'baseline_auc'} (as the arguments above); then
      every curve is labelled with its cohort and each cohort's operating
      point is marked in its colour.
  """
  curve = roc_points(matrices or [])
  external = external or None
  external_curve = roc_points((external or {}).get('matrices') or [])
  if curve is None and external_curve is None:
    return None
  figure = _new_figure(5.6, 6.4) if external else _new_figure(4.8, 4.4)
  ax = figure.subplots()
  ax.plot([0, 1], [0, 1], color='#cccccc', linestyle=':', linewidth=1,
          label='chance')
  prefix = 'internal ' if external else ''
  baseline = roc_points(baseline_matrices or [])
  if baseline is not None:
    ax.plot(*baseline, color=BASELINE_COLOR, linestyle='--', linewidth=1.5,
            label=prefix + 'deployed model' + (
                f' (AUC {baseline_auc:.3f})' if is_number(baseline_auc)
                else ''))
  if curve is not None:
    ax.plot(*curve, color=CANDIDATE_COLOR, linewidth=2,
            label=(prefix + 'candidate' if external else 'candidate') + (
                f' (AUC {auc:.3f})' if is_number(auc) else ''))
    _operating_point(
        ax, operating_point,
        'internal operating point' if external else 'operating point',
        CANDIDATE_COLOR if external else '#d62728', 'o',
        _left_place if external else _single_place)
  if external:
    base = roc_points(external.get('baseline_matrices') or [])
    base_auc = external.get('baseline_auc')
    if base is not None:
      ax.plot(*base, color=EXTERNAL_BASELINE_COLOR, linestyle='--',
              linewidth=1.5, label='external deployed model' + (
                  f' (AUC {base_auc:.3f})' if is_number(base_auc) else ''))
    if external_curve is not None:
      external_auc = external.get('auc')
      ax.plot(*external_curve, color=EXTERNAL_COLOR, linewidth=2,
              label='external candidate' + (
                  f' (AUC {external_auc:.3f})' if is_number(external_auc)
                  else ''))
      _operating_point(ax, external.get('operating_point'),
                       'external operating point', EXTERNAL_COLOR, 's',
                       _below_right_place)
  ax.set_xlim(-0.02, 1.02)
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel('false positive rate (1 - specificity)')
  ax.set_ylabel('true positive rate (sensitivity)')
  ax.set_title('ROC, internal test split vs external cohort' if external
               else 'ROC, test split')
  ax.grid(alpha=0.3)
  if external:  # seven entries: below the axes, off the curves
    ax.set_aspect('equal')
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.13), ncol=2,
              fontsize=8, frameon=False)
  else:
    ax.legend(loc='lower right', fontsize=8)
  return _save(figure, folder, name)


def confusion_matrix(folder: str, name: str,
                     matrix: Optional[Dict[str, float]],
                     title: str = 'test split') -> Optional[str]:
  """2x2 heatmap with counts: rows are the true class, columns predicted;
  `title` names the examples (a cohort)."""
  if not matrix or not all(is_number(matrix.get(k))
                           for k in ('tp', 'fp', 'tn', 'fn')):
    return None
  cells = [[matrix['tn'], matrix['fp']], [matrix['fn'], matrix['tp']]]
  figure = _new_figure(4.4, 3.8)
  ax = figure.subplots()
  image = ax.imshow(cells, cmap='Blues', vmin=0)
  figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  peak = max(max(row) for row in cells) or 1
  for i in range(2):
    total = sum(cells[i]) or 1
    for j in range(2):
      value = cells[i][j]
      ax.text(j, i, f'{value:g}\n({value / total:.0%} of row)', ha='center',
              va='center', fontsize=11,
              color='white' if value > peak / 2 else 'black')
  ax.set_xticks([0, 1], [f'predicted\n{n}' for n in LABEL_NAMES])
  ax.set_yticks([0, 1], [f'true\n{n}' for n in LABEL_NAMES])
  threshold = matrix.get('threshold')
  ax.set_title(title + (f', threshold {threshold:.3f}'
                        if is_number(threshold) else ''))
  return _save(figure, folder, name)


def subtype_rates(folder: str, name: str,
                  rows: List[Dict[str, Any]]) -> Optional[str]:
  """Bars of sensitivity or specificity per slice, with n in the labels.

  Args:
    folder: where the PNG goes.
    name: its file name.
    rows: [{'slice', 'metric' ('sensitivity' or 'specificity'), 'value',
      'n', 'baseline_value' (optional)}]; rows without a value are labelled
      'n/a'.
  """
  if not rows:
    return None
  figure = _new_figure(6.4, 3.4)
  ax = figure.subplots()
  has_baseline = any(is_number(r.get('baseline_value')) for r in rows)
  width = 0.38 if has_baseline else 0.6
  positions = list(range(len(rows)))
  offset = width / 2 if has_baseline else 0.0
  values = [r['value'] if is_number(r.get('value')) else 0.0 for r in rows]
  bars = ax.bar([p - offset for p in positions], values, width,
                color=CANDIDATE_COLOR, label='candidate')
  for bar, row in zip(bars, rows):
    text = f"{row['value']:.2f}" if is_number(row.get('value')) else 'n/a'
    ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02,
            text, ha='center', va='bottom', fontsize=8)
  if has_baseline:
    base = [r['baseline_value'] if is_number(r.get('baseline_value')) else 0
            for r in rows]
    bars = ax.bar([p + offset for p in positions], base, width,
                  color=BASELINE_COLOR, label='deployed model')
    for bar, row in zip(bars, rows):
      value = row.get('baseline_value')
      ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02,
              f'{value:.2f}' if is_number(value) else 'n/a', ha='center',
              va='bottom', fontsize=8)
    ax.legend(fontsize=8, loc='upper center', ncol=2, frameon=False)
  labels = []
  for row in rows:
    n = row.get('n')
    labels.append(f"{row['slice']}\n{row['metric']}\n"
                  f"n={int(n) if is_number(n) else '?'}")
  ax.set_xticks(positions, labels, fontsize=8)
  ax.set_ylim(0, 1.25 if has_baseline else 1.12)
  ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
  ax.set_ylabel('rate at the operating threshold')
  ax.set_title('per-subtype sensitivity / specificity, test split')
  ax.grid(axis='y', alpha=0.3)
  return _save(figure, folder, name)


def calibration_bins(buckets: Sequence[Dict[str, float]],
                     bins: int = 10) -> List[Dict[str, float]]:
  """TFMA's fine calibration buckets merged into `bins` equal-width bins of
  predicted probability: [{'lower', 'upper', 'weight', 'mean_prediction',
  'fraction_positive'}], empty bins left out."""
  merged = [{'lower': i / bins, 'upper': (i + 1) / bins, 'weight': 0.0,
             'labels': 0.0, 'predictions': 0.0} for i in range(bins)]
  for bucket in buckets:
    weight = bucket.get('weight') or 0.0
    if not weight:
      continue
    mean = (bucket.get('predictions') or 0.0) / weight
    index = min(bins - 1, max(0, int(mean * bins)))
    merged[index]['weight'] += weight
    merged[index]['labels'] += bucket.get('labels') or 0.0
    merged[index]['predictions'] += bucket.get('predictions') or 0.0
  out = []
  for entry in merged:
    if entry['weight']:
      out.append({'lower': entry['lower'], 'upper': entry['upper'],
                  'weight': entry['weight'],
                  'mean_prediction': entry['predictions'] / entry['weight'],
                  'fraction_positive': entry['labels'] / entry['weight']})
  return out


def calibration(folder: str, name: str,
                buckets: Optional[Sequence[Dict[str, float]]],
                external_buckets: Optional[Sequence[Dict[str, float]]] = None
                ) -> Optional[str]:
  """Reliability diagram (fraction positive vs mean predicted probability
  per bin) above a histogram of predictions; the external cohort's beside
  the test split's when there is one."""
  merged = calibration_bins(buckets or [])
  outside = calibration_bins(external_buckets or [])
  if not merged:
    return None
  figure = _new_figure(4.8, 5.0)
  top, bottom = figure.subplots(
      2, 1, sharex=True, gridspec_kw={'height_ratios': [3, 1]})
  top.plot([0, 1], [0, 1], color='#cccccc', linestyle=':',
           label='perfectly calibrated')
  top.plot([b['mean_prediction'] for b in merged],
           [b['fraction_positive'] for b in merged], 'o-',
           color=CANDIDATE_COLOR, label='test split')
  if outside:
    top.plot([b['mean_prediction'] for b in outside],
             [b['fraction_positive'] for b in outside], 's--',
             color=EXTERNAL_COLOR, label='external cohort')
  top.set_ylabel('fraction PNEUMONIA')
  top.set_xlim(0, 1)
  top.set_ylim(-0.02, 1.02)
  top.set_title('calibration of the served probability (10 bins)')
  top.grid(alpha=0.3)
  top.legend(fontsize=8, loc='upper left')
  width = 0.045 if outside else 0.09
  bottom.bar([(b['lower'] + b['upper']) / 2 - (width / 2 if outside else 0)
              for b in merged], [b['weight'] for b in merged], width=width,
             color=CANDIDATE_COLOR)
  if outside:
    bottom.bar([(b['lower'] + b['upper']) / 2 + width / 2 for b in outside],
               [b['weight'] for b in outside], width=width,
               color=EXTERNAL_COLOR)
  bottom.set_xlabel('predicted probability of PNEUMONIA')
  bottom.set_ylabel('examples')
  bottom.grid(alpha=0.3)
  return _save(figure, folder, name)


def calibration_fit(folder: str, name: str,
                    record: Optional[Dict[str, Any]]) -> Optional[str]:
  """The Trainer's calibration on the eval split (model_info's
  `calibration`): reliability before the map and after it, out of fold."""
  if not record or not record.get('after_out_of_fold'):
    return None
  figure = _new_figure(4.8, 4.0)
  ax = figure.subplots()
  ax.plot([0, 1], [0, 1], color='#cccccc', linestyle=':',
          label='perfectly calibrated')
  for key, label, color, style in (
      ('before', 'before', BASELINE_COLOR, 's--'),
      ('after_out_of_fold', f"after {record.get('method')} (out of fold)",
       CANDIDATE_COLOR, 'o-')):
    rows = [r for r in (record.get(key) or {}).get('reliability') or []
            if r.get('count')]
    ece = (record.get(key) or {}).get('expected_calibration_error')
    ax.plot([r['mean_predicted'] for r in rows], [r['observed'] for r in rows],
            style, color=color, label=f'{label}, ECE {ece:.3f}'
            if is_number(ece) else label)
  ax.set_xlim(0, 1)
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel('predicted probability of PNEUMONIA')
  ax.set_ylabel('fraction PNEUMONIA')
  ax.set_title(f"calibration fit, eval split ({record.get('images')} images)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc='upper left')
  return _save(figure, folder, name)


def ingestion_counts(folder: str, name: str,
                     counts: Optional[Dict[str, Dict[str, int]]]
                     ) -> Optional[str]:
  """Grouped bars of images per split and class."""
  splits = [s for s in ('train', 'eval', 'test') if s in (counts or {})]
  splits += sorted(s for s in (counts or {})
                   if s not in splits and s != 'all')
  if not splits:
    return None
  figure = _new_figure(5.6, 3.0)
  ax = figure.subplots()
  width = 0.38
  for k, (label, color) in enumerate(zip(LABEL_NAMES,
                                         ('#4c9f70', '#c8553d'))):
    values = [counts[s].get(label, 0) or 0 for s in splits]
    bars = ax.bar([i + (k - 0.5) * width for i in range(len(splits))], values,
                  width, color=color, label=label)
    for bar, value in zip(bars, values):
      ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
              f'{value:,}', ha='center', va='bottom', fontsize=8)
  ax.set_xticks(range(len(splits)), splits)
  ax.set_ylabel('images')
  ax.set_title('images per split and class')
  ax.margins(y=0.15)
  ax.legend(fontsize=8)
  ax.grid(axis='y', alpha=0.3)
  return _save(figure, folder, name)
