"""Opens a local HTML page in headless Chromium and checks its images.

Debian's `chromium` is started headless with a throw-away profile and a
DevTools port; the page is loaded over the Chrome DevTools Protocol
(websocket-client) and asked which of its <img> elements actually decoded.
Install the browser with `make browser` (or `apt-get install chromium`).
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

import websocket

_IMAGES_JS = ("Array.from(document.images).map(i => [i.getAttribute('src'), "
              'i.complete && i.naturalWidth > 0])')


def chromium_path() -> Optional[str]:
  """The Chromium binary (`chromium` on PATH or /usr/bin/chromium), or None."""
  for name in ('chromium', 'chromium-browser'):
    found = shutil.which(name)
    if found:
      return found
  if os.access('/usr/bin/chromium', os.X_OK):
    return '/usr/bin/chromium'
  return None


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _page_websocket(port: int, process: subprocess.Popen,
                    timeout: float) -> str:
  """webSocketDebuggerUrl of a page target, once DevTools answers."""
  deadline = time.monotonic() + timeout
  last_error = None
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f'chromium exited with code {process.returncode} '
                         'before DevTools answered')
    try:
      with urllib.request.urlopen(f'http://127.0.0.1:{port}/json',
                                  timeout=2) as response:
        targets = json.load(response)
      for target in targets:
        if target.get('type') == 'page' and target.get(
            'webSocketDebuggerUrl'):
          return target['webSocketDebuggerUrl']
      # No page yet (some builds start without one): ask for a blank one.
      request = urllib.request.Request(
          f'http://127.0.0.1:{port}/json/new?about:blank', method='PUT')
      with urllib.request.urlopen(request, timeout=2) as response:
        target = json.load(response)
      if target.get('webSocketDebuggerUrl'):
        return target['webSocketDebuggerUrl']
    except (OSError, ValueError) as e:
      last_error = e
    time.sleep(0.1)
  raise TimeoutError(f'Chromium DevTools did not answer on port {port} '
                     f'within {timeout:.0f} s ({last_error!r})')


class _DevTools:
  """A minimal CDP client: numbered commands, events collected on the way."""

  def __init__(self, url: str, timeout: float):
    # Chromium refuses DevTools websockets that send an Origin header unless
    # --remote-allow-origins is given; sending none is simpler.
    self._ws = websocket.create_connection(url, timeout=timeout,
                                           suppress_origin=True)
    self._next_id = 0
    self.events: List[Dict[str, Any]] = []

  def close(self) -> None:
    self._ws.close()

  def call(self, method: str, **params) -> Dict[str, Any]:
    self._next_id += 1
    message_id = self._next_id
    self._ws.send(json.dumps({'id': message_id, 'method': method,
                              'params': params}))
    while True:
      message = json.loads(self._ws.recv())
      if message.get('id') == message_id:
        if 'error' in message:
          raise RuntimeError(f'{method} failed: {message["error"]}')
        return message.get('result', {})
      if 'method' in message:
        self.events.append(message)

  def wait_for_event(self, method: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
      if any(e.get('method') == method for e in self.events):
        return True
      remaining = deadline - time.monotonic()
      if remaining <= 0:
        return False
      self._ws.settimeout(remaining)
      try:
        message = json.loads(self._ws.recv())
      except websocket.WebSocketTimeoutException:
        return False
      if 'method' in message:
        self.events.append(message)

  def evaluate(self, expression: str) -> Any:
    result = self.call('Runtime.evaluate', expression=expression,
                       returnByValue=True, awaitPromise=True)
    if 'exceptionDetails' in result:
      raise RuntimeError(f'{expression!r} raised: '
                         f"{result['exceptionDetails']}")
    return result['result'].get('value')


def _signal_group(pgid: int, sig: int) -> bool:
  """Sends `sig` to the process group; False once nothing is left in it."""
  try:
    os.killpg(pgid, sig)
    return True
  except ProcessLookupError:
    return False
  except PermissionError:
    return True


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
  """Ends the browser and every process it started (its own process group,
  which only holds what this module launched)."""
  pgid = process.pid  # start_new_session: the group is the browser's own
  _signal_group(pgid, signal.SIGTERM)
  try:
    process.wait(timeout=grace)
  except subprocess.TimeoutExpired:
    _signal_group(pgid, signal.SIGKILL)
    process.wait(timeout=grace)
  # Renderers and helpers outlive the launcher for a moment; wait for them
  # (bounded: an unreaped zombie would keep the group alive forever).
  deadline = time.monotonic() + grace
  while _signal_group(pgid, 0) and time.monotonic() < deadline:
    time.sleep(0.05)
  _signal_group(pgid, signal.SIGKILL)


def broken_images(html_path, timeout: float = 60.0
                  ) -> Tuple[int, List[str]]:
  """(number of <img> on the page, src of each one that did not load).

  Raises:
    FileNotFoundError: no Chromium, or no such page.
    TimeoutError: the browser or the page did not answer in time.
  """
  binary = chromium_path()
  if binary is None:
    raise FileNotFoundError('chromium not found: apt-get install chromium '
                            '(or make browser)')
  path = pathlib.Path(html_path).resolve()
  if not path.is_file():
    raise FileNotFoundError(path)
  url = path.as_uri()
  profile = tempfile.mkdtemp(prefix='chromium-profile-')
  port = _free_port()
  args = [binary, '--headless', '--no-sandbox', '--disable-gpu',
          '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync',
          '--allow-file-access-from-files', f'--user-data-dir={profile}',
          f'--remote-debugging-port={port}', 'about:blank']
  process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             start_new_session=True)
  client = None
  try:
    deadline = time.monotonic() + timeout
    client = _DevTools(_page_websocket(port, process, timeout), timeout)
    client.call('Page.enable')
    client.events.clear()
    client.call('Page.navigate', url=url)
    client.wait_for_event('Page.loadEventFired',
                          max(1.0, deadline - time.monotonic()))
    # Whatever the events said, the document itself must be complete.
    while True:
      state = client.evaluate('[document.readyState, location.href]')
      if state[0] == 'complete' and state[1] == url:
        break
      if time.monotonic() > deadline:
        raise TimeoutError(f'{url} did not finish loading ({state})')
      time.sleep(0.1)
    images = client.evaluate(_IMAGES_JS) or []
    return len(images), [src for src, ok in images if not ok]
  finally:
    if client is not None:
      try:
        client.close()
      except Exception:  # pylint: disable=broad-except
        pass
    _stop(process)
    shutil.rmtree(profile, ignore_errors=True)
