// One Server-Sent Events stream per tab (/v1/events): export progress and changed
// figures, pushed by the server from PostgreSQL NOTIFY. Pages register handlers; a
// navigation clears them. Figures refresh debounced, so a burst of writes is one reload.

const DEBOUNCE_MS = 1000;

export class Live {
  constructor({ onExportFinished }) {
    this.figureHandlers = new Map();
    this.exportHandlers = new Set();
    this.onExportFinished = onExportFinished;
    this.timers = new Map();
    this.connected = false;
  }

  start() {
    if (this.source) return;
    this.source = new EventSource("/v1/events");
    this.readies = 0;
    this.source.addEventListener("ready", () => {
      this.connected = true;
      document.body.dataset.live = "on";
      // A reconnect (the server ends each stream after a minute): events sent while we
      // were away are lost, so reload what is open.
      if (this.readies++ > 0) this.resync();
    });
    this.source.addEventListener("error", () => { this.connected = false; document.body.dataset.live = "off"; });
    this.source.addEventListener("export", (e) => this.emitLocal({ kind: "export", ...JSON.parse(e.data) }));
    this.source.addEventListener("figures", (e) => this.figuresChanged(JSON.parse(e.data).report));
    this.source.addEventListener("resync", () => this.resync());
  }

  resync() {
    for (const report of this.figureHandlers.keys()) this.figuresChanged(report);
    for (const handler of this.exportHandlers) handler({ kind: "resync" });
  }

  stop() {
    if (this.source) this.source.close();
    this.source = null;
  }

  reset() {
    this.figureHandlers.clear();
    this.exportHandlers.clear();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  onFigures(reportType, handler) { this.figureHandlers.set(reportType, handler); }
  onExport(handler) { this.exportHandlers.add(handler); }

  emitLocal(event) {
    for (const handler of this.exportHandlers) handler(event);
    if (["completed", "failed"].includes(event.status)) this.onExportFinished(event);
  }

  figuresChanged(reportType) {
    const handler = this.figureHandlers.get(reportType);
    if (!handler) return;
    clearTimeout(this.timers.get(reportType));
    this.timers.set(reportType, setTimeout(() => {
      this.timers.delete(reportType);
      handler();
    }, DEBOUNCE_MS));
  }
}
