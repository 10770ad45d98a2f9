// One timer for the whole page: it runs the current view's refresh every `intervalMs` while the tab is visible and
// live updates are on, and stops while the tab is hidden (a page left open in a background tab costs no reads).
// Views do not start timers of their own: switching view swaps the task, so there is never one timer per job.
"use strict";

export function createPoller(intervalMs, {isLive = () => true} = {}) {
  let task = null;      // async () => void: the current view's refresh
  let timer = null;
  let running = false;  // a refresh is under way: a second one waits for it instead of overlapping
  let again = false;

  const visible = () => document.visibilityState === "visible";

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (task && isLive() && visible()) timer = setTimeout(run, intervalMs);
  }

  async function run() {
    clearTimeout(timer);
    timer = null;
    if (!task) return;
    if (running) { again = true; return; }
    running = true;
    try {
      await task();
    } finally {
      running = false;
    }
    if (again) { again = false; return run(); }
    schedule();
  }

  document.addEventListener("visibilitychange", () => {
    if (visible()) run();   // back in view: show what changed at once, then poll again
    else { clearTimeout(timer); timer = null; }
  });

  return {
    // Make `refresh` the current view's task and run it now.
    use(refresh) { task = refresh; return run(); },
    // Run the current task now (after an action, or when live updates are switched on).
    now: () => run(),
    get scheduled() { return timer !== null; },
  };
}
