"""bench/generalisation's ablation table: mean (min-max) over seeds per
variant, and verdicts against the baseline (a gain counts only where it
exceeds the spread)."""
import statistics
from typing import Any, Dict, List, Sequence

# (column, key, higher is better)
METRICS = (('internal AUC', 'internal_auc', True),
           ('external AUC', 'external_auc', True),
           ('gap', 'gap', False),
           ('ext. sensitivity', 'external_sensitivity', True),
           ('ext. specificity', 'external_specificity', True),
           ('ext. ECE', 'external_ece', False),
           ('ext. ECE uncalibrated', 'external_ece_uncalibrated', False),
           ('worst val-AUC fall', 'worst_val_auc_fall', False),
           ('last-epoch val AUC', 'last_val_auc', True),
           ('train min', 'train_minutes', None))
MIN_SEEDS = 3  # fewer: no verdict
VERDICT_KEYS = ('internal_auc', 'external_auc', 'gap', 'external_sensitivity',
                'external_specificity', 'external_ece', 'worst_val_auc_fall',
                'last_val_auc')



def summary_stats(values: Sequence[float]) -> Dict[str, float]:
  return {'mean': statistics.fmean(values), 'min': min(values),
          'max': max(values), 'spread': max(values) - min(values),
          'std': statistics.stdev(values) if len(values) > 1 else 0.0,
          'n': len(values)}


def _value(result: Dict[str, Any], key: str) -> float:
  if key == 'last_val_auc':  # derived: results before it lack the key
    return result['val_auc_by_epoch'][-1]
  return result[key]


def summarise(results: Dict[str, List[Dict[str, Any]]]):
  return {variant: {key: summary_stats([_value(r, key) for r in runs])
                    for _, key, _ in METRICS}
          for variant, runs in results.items() if runs}


def verdicts(summary, baseline: str) -> Dict[str, Dict[str, Dict[str, Any]]]:
  """For each variant but the baseline and each metric: the mean gain (in
  the better direction), the spread, and whether the gain exceeds it."""
  out = {}
  higher = {key: better for _, key, better in METRICS}
  for variant, stats in summary.items():
    if variant == baseline or baseline not in summary:
      continue
    out[variant] = {}
    for key in VERDICT_KEYS:
      sign = 1.0 if higher[key] else -1.0
      gain = sign * (stats[key]['mean'] - summary[baseline][key]['mean'])
      spread = max(stats[key]['spread'], summary[baseline][key]['spread'])
      enough = min(stats[key]['n'], summary[baseline][key]['n']) >= MIN_SEEDS
      out[variant][key] = {'gain': gain, 'spread': spread, 'enough': enough,
                           'counts': enough and gain > spread,
                           'worse': enough and -gain > spread}
  return out


def cell(stat: Dict[str, float], digits: int = 3) -> str:
  return (f"{stat['mean']:.{digits}f} ({stat['min']:.{digits}f}–"
          f"{stat['max']:.{digits}f})")


def _word(verdict: Dict[str, Any]) -> str:
  if not verdict['enough']:
    return f'n/a (<{MIN_SEEDS} seeds)'
  if verdict['counts']:
    return 'counts'
  return 'worse' if verdict['worse'] else 'no'


def table(summary, judged, baseline: str) -> str:
  header = (['variant', 'seeds'] + [name for name, _, _ in METRICS] +
            ['verdict (external AUC)'])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for variant, stats in summary.items():
    cells = [variant, str(stats['internal_auc']['n'])]
    for _, key, _ in METRICS:
      cells.append(cell(stats[key], 1 if key == 'train_minutes' else 3))
    if variant == baseline:
      cells.append('baseline')
    else:
      v = judged[variant]['external_auc']
      cells.append(f"{_word(v)}: {v['gain']:+.3f} vs spread "
                   f"{v['spread']:.3f}")
    lines.append('| ' + ' | '.join(cells) + ' |')
  if judged:
    names = {key: name for name, key, _ in METRICS}
    header = ['variant vs ' + baseline] + [names[k] for k in VERDICT_KEYS]
    lines += ['', 'Gain (better direction) vs spread; "counts" only when '
              'the gain exceeds the spread, "worse" when the loss does:', '',
              '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for variant, by_key in judged.items():
      lines.append('| ' + ' | '.join([variant] + [
          f"{_word(by_key[k])} ({by_key[k]['gain']:+.3f} / "
          f"{by_key[k]['spread']:.3f})" for k in VERDICT_KEYS]) + ' |')
  return '\n'.join(lines) + '\n'
