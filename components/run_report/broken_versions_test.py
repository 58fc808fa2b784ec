"""The report names the serving folder's broken versions that DeployedModel
skipped (issue 11 §2), read from its artifact's layout.DEPLOYED_SKIPPED."""
import json

from tfx.types import standard_artifacts

from components.run_report import page
from components.run_report import reading
from components.run_report import run as run_lib
from contract import layout


def test_the_report_names_each_skipped_version_and_why(tmp_path):
  baseline = standard_artifacts.Model()
  baseline.set_int_custom_property(layout.DEPLOYED_FOUND, 1)
  baseline.set_string_custom_property(layout.DEPLOYED_VERSION, '1796000000')
  baseline.set_string_custom_property(layout.DEPLOYED_PATH, '/s/1796000000')
  baseline.set_string_custom_property(layout.DEPLOYED_SKIPPED, json.dumps([
      {'version': '1797000000', 'path': '/s/1797000000',
       'reason': 'its variables are missing (no variables/variables.index)'},
      {'version': '1796999990', 'path': '/s/<1796999990>',
       'reason': 'no saved_model.pb'}]))
  deployed = reading._deployed(baseline)  # pylint: disable=protected-access
  assert [s['version'] for s in deployed.skipped] == ['1797000000',
                                                      '1796999990']

  html = open(page.write_report(run_lib.Run(baseline=deployed), str(tmp_path)),
              encoding='utf-8').read()

  assert 'Broken in the serving folder' in html
  assert 'version <b>1797000000</b>' in html
  assert 'its variables are missing (no variables/variables.index)' in html
  assert 'version <b>1796999990</b>' in html and 'no saved_model.pb' in html
  assert '/s/&lt;1796999990&gt;' in html  # escaped
  assert 'version <b>1796000000</b>' in html  # the baseline used


def test_no_warning_without_skipped_versions(tmp_path):
  html = open(page.write_report(run_lib.Run(baseline=run_lib.Deployed(False)),
                                str(tmp_path)), encoding='utf-8').read()
  assert 'Broken in the serving folder' not in html
