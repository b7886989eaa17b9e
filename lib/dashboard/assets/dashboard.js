// express-background-task/dashboard: the page's script. Reads the stream, fills the figures, draws SVG charts.
// No dependencies, no build step: plain DOM and SVG, so the page loads nothing from anywhere else.
;(function dashboardPage() {
  'use strict'

  var SVG = 'http://www.w3.org/2000/svg'
  var WINDOWS = [1, 5, 15]
  /** Without a view for this long, the stream is taken for dead and opened again. */
  var STALE_MS = 5000
  var RECONNECT_MS = [1000, 2000, 5000, 10000]

  var root = document.documentElement
  var main = document.getElementById('main')
  var base = root.getAttribute('data-base') || ''
  var windowMinutes = readWindow()
  var source = null
  var lastView = null
  var watchdog = 0
  var retries = 0
  var retryTimer = 0

  // ------------------------------------------------------------------------- formatting

  /** Milliseconds for people: 0.42 ms, 42.1 ms, 421 ms, 4.21 s, 3m 12s. */
  function ms(value) {
    if (value === null || value === undefined) return '–'
    if (value < 1) return value.toFixed(2) + ' ms'
    if (value < 10) return value.toFixed(2) + ' ms'
    if (value < 100) return value.toFixed(1) + ' ms'
    if (value < 1000) return value.toFixed(0) + ' ms'
    if (value < 10000) return (value / 1000).toFixed(2) + ' s'
    if (value < 60000) return (value / 1000).toFixed(1) + ' s'
    var seconds = Math.round(value / 1000)
    if (seconds < 3600) return Math.floor(seconds / 60) + 'm ' + pad(seconds % 60) + 's'
    return Math.floor(seconds / 3600) + 'h ' + pad(Math.floor(seconds / 60) % 60) + 'm'
  }
  function pad(n) {
    return n < 10 ? '0' + n : String(n)
  }
  function rpm(value) {
    if (value === null || value === undefined) return '–'
    if (value >= 10000) return (value / 1000).toFixed(1) + 'k'
    return value < 10 ? value.toFixed(1) : value.toFixed(0)
  }
  function percent(value) {
    if (value === null || value === undefined) return '–'
    var p = value * 100
    if (p === 0) return '0%'
    return (p < 10 ? p.toFixed(1) : p.toFixed(0)) + '%'
  }
  function apdex(value) {
    return value === null || value === undefined ? '–' : value.toFixed(2)
  }
  function count(value) {
    return value === null || value === undefined ? '–' : value.toLocaleString('en-US')
  }
  function seconds(value) {
    return String(+value.toFixed(3)) + ' s'
  }

  // ------------------------------------------------------------------------- the figures

  function setFigure(name, text) {
    var nodes = document.querySelectorAll('[data-figure="' + name + '"]')
    for (var i = 0; i < nodes.length; i++) if (nodes[i].textContent !== text) nodes[i].textContent = text
  }

  function render(view) {
    lastView = view
    var web = view.web
    var background = view.background
    var asWeb = view.asWeb
    setFigure('apdex-t', view.apdexT.map(seconds).join(', '))
    document.getElementById('scope').textContent =
      view.workers === null ? 'this process' : 'cluster of ' + view.workers + ' worker' + (view.workers === 1 ? '' : 's')

    var moved = asWeb.count - web.count
    setFigure('payoff-lead', payoffLead(view, moved))
    setFigure('web-p95', ms(web.p95Ms))
    setFigure('asweb-p95', ms(asWeb.p95Ms))
    setFigure('web-p99', ms(web.p99Ms))
    setFigure('asweb-p99', ms(asWeb.p99Ms))
    setFigure('web-mean', ms(web.meanMs))
    setFigure('asweb-mean', ms(asWeb.meanMs))
    setFigure('web-apdex', apdex(web.apdex))
    setFigure('asweb-apdex', apdex(asWeb.apdex))

    setFigure('web-rpm', rpm(web.rpm))
    setFigure('web-count', count(web.count))
    setFigure('background-rpm', rpm(background.rpm))
    setFigure('background-count', count(background.count))
    setFigure('web-p50', ms(web.p50Ms))
    setFigure('web-p95-card', ms(web.p95Ms))
    setFigure('web-p99-card', ms(web.p99Ms))
    setFigure('web-apdex-card', apdex(web.apdex))
    setFigure('web-zones', web.satisfying + ' satisfied · ' + web.tolerating + ' tolerating · ' + web.frustrating + ' frustrated')
    setFigure('web-error-rate', percent(web.errorRate))
    setFigure('background-error-rate', percent(background.errorRate))
    setFigure('inflight-web', count(view.inFlight.web))
    setFigure('inflight-background', count(view.inFlight.background))
    setFigure('updated', 'updated ' + new Date(view.at).toLocaleTimeString('en-GB'))

    drawCharts(view)
    fillNames('web', view.names.web, true)
    fillNames('background', view.names.background, false)
    fillOpen(view.inFlight.open)
    main.setAttribute('data-at', String(view.at))
    main.setAttribute('data-window', String(view.windowMinutes))
  }

  function payoffLead(view, moved) {
    var minutes = view.windowMinutes + (view.windowMinutes === 1 ? ' minute' : ' minutes')
    if (view.web.count === 0 && view.asWeb.count === 0) return 'No web requests in the last ' + minutes + ' yet.'
    if (moved <= 0) return 'No request was marked background in the last ' + minutes + ': the web figures are all there is.'
    return count(moved) + (moved === 1 ? ' request' : ' requests') + ' marked background in the last ' + minutes +
      ' stay out of the web figures. Had they stayed web, web p95 would read ' + ms(view.asWeb.p95Ms) +
      ' instead of ' + ms(view.web.p95Ms) + ', and Apdex ' + apdex(view.asWeb.apdex) + ' instead of ' + apdex(view.web.apdex) + '.'
  }

  /**
   * A transaction name as the table shows it: without its WebTransaction/ or OtherTransaction/ prefix
   * (the table says which), the group dimmed, a line break allowed after each slash. The full name
   * is the row's title.
   */
  function nameCell(name) {
    var td = document.createElement('td')
    td.title = name
    var parts = name.slice(name.indexOf('/') + 1).split('/')
    parts.forEach(function addPart(part, i) {
      var text = part + (i < parts.length - 1 ? '/' : '')
      if (i === 0) {
        var group = document.createElement('span')
        group.className = 'group'
        group.textContent = text
        td.appendChild(group)
      } else {
        td.appendChild(document.createTextNode(text))
      }
      if (i < parts.length - 1) td.appendChild(document.createElement('wbr'))
    })
    return td
  }
  function cell(text) {
    var td = document.createElement('td')
    td.textContent = text
    return td
  }
  function emptyRow(columns, text) {
    var tr = document.createElement('tr')
    var td = cell(text)
    td.colSpan = columns
    td.className = 'none'
    tr.appendChild(td)
    return tr
  }

  function fillNames(which, rows, web) {
    var body = document.querySelector('[data-table="' + which + '"] tbody')
    var fragment = document.createDocumentFragment()
    if (rows.length === 0) fragment.appendChild(emptyRow(7, web ? 'no web transactions in this window' : 'no background transactions in this window'))
    rows.forEach(function addRow(row) {
      var tr = document.createElement('tr')
      tr.setAttribute('data-name', row.name)
      if (row.open > 0) tr.className = 'open'
      tr.appendChild(nameCell(row.name))
      tr.appendChild(cell(count(row.count)))
      tr.appendChild(cell(ms(row.meanMs)))
      tr.appendChild(cell(ms(row.p95Ms)))
      tr.appendChild(cell(ms(row.maxMs)))
      tr.appendChild(cell(web ? apdex(row.apdex) : count(row.open)))
      tr.appendChild(cell(percent(row.errorRate)))
      fragment.appendChild(tr)
    })
    body.replaceChildren(fragment)
  }

  function fillOpen(groups) {
    var body = document.querySelector('[data-table="open"] tbody')
    var fragment = document.createDocumentFragment()
    if (groups.length === 0) fragment.appendChild(emptyRow(4, 'nothing in flight'))
    groups.forEach(function addGroup(group) {
      var tr = document.createElement('tr')
      tr.setAttribute('data-name', group.name)
      tr.appendChild(nameCell(group.name))
      tr.appendChild(cell(group.type))
      tr.appendChild(cell(count(group.count)))
      tr.appendChild(cell(ms(group.longestMs)))
      fragment.appendChild(tr)
    })
    body.replaceChildren(fragment)
  }

  // ------------------------------------------------------------------------- charts (plain SVG)

  function drawCharts(view) {
    var s = view.series
    chart('throughput', s, [
      { values: s.webRpm, cls: 's-web' },
      { values: s.backgroundRpm, cls: 's-background' }
    ], { format: rpm })
    chart('response', s, [
      { values: s.asWebP95Ms, cls: 's-asweb' },
      { values: s.p50Ms, cls: 's-p50' },
      { values: s.p99Ms, cls: 's-p99' },
      { values: s.p95Ms, cls: 's-web' }
    ], { format: ms, log: true })
    chart('apdex', s, [
      { values: s.asWebApdex, cls: 's-asweb' },
      { values: s.apdex, cls: 's-web' }
    ], { format: apdex, min: 0, max: 1 })
    chart('errors', s, [
      { values: s.webErrorRate, cls: 's-web' },
      { values: s.backgroundErrorRate, cls: 's-background' }
    ], { format: percent, minMax: 0.05 })
    chart('inflight', s, [
      { values: s.inFlightWeb, cls: 's-web' },
      { values: s.inFlightBackground, cls: 's-background' }
    ], { format: count, integer: true })
  }

  function el(name, attributes, parent) {
    var node = document.createElementNS(SVG, name)
    for (var key in attributes) node.setAttribute(key, attributes[key])
    if (parent) parent.appendChild(node)
    return node
  }

  /** A nice round step for about `ticks` gridlines up to `max`. */
  function niceStep(max, ticks) {
    var raw = max / ticks
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)))
    var steps = [1, 2, 2.5, 5, 10]
    for (var i = 0; i < steps.length; i++) if (steps[i] * magnitude >= raw) return steps[i] * magnitude
    return 10 * magnitude
  }

  function chart(name, series, lines, options) {
    var svg = document.querySelector('[data-chart="' + name + '"]')
    var width = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 600)
    var height = Math.max(80, Math.round(svg.getBoundingClientRect().height) || 170)
    var left = 58
    var right = 8
    var top = 8
    var bottom = 20
    var plotW = width - left - right
    var plotH = height - top - bottom
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height)
    svg.replaceChildren()

    var values = []
    lines.forEach(function collect(line) {
      line.values.forEach(function keep(v) {
        if (v !== null && v !== undefined && (!options.log || v > 0)) values.push(v)
      })
    })
    var points = series.webRpm.length
    var x = function xOf(i) {
      return left + (points <= 1 ? plotW : (i / (points - 1)) * plotW)
    }
    var ticks = []
    var y
    if (options.log) {
      var lo = values.length ? Math.min.apply(null, values) : 1
      var hi = values.length ? Math.max.apply(null, values) : 1000
      var minExp = Math.floor(Math.log10(lo))
      var maxExp = Math.max(minExp + 1, Math.ceil(Math.log10(hi)))
      for (var e = minExp; e <= maxExp; e++) ticks.push(Math.pow(10, e))
      y = function yLog(v) {
        return top + plotH - ((Math.log10(v) - minExp) / (maxExp - minExp)) * plotH
      }
    } else {
      var min = options.min !== undefined ? options.min : 0
      var max = options.max !== undefined ? options.max : Math.max(options.minMax || (options.integer ? 4 : 1), values.length ? Math.max.apply(null, values) : 0)
      var step = options.max !== undefined ? 0.25 : niceStep(max - min, options.integer ? 4 : 4)
      if (options.integer) step = Math.max(1, Math.round(step))
      if (options.max === undefined) max = Math.ceil(max / step) * step
      for (var t = min; t <= max + step / 1e6; t += step) ticks.push(t)
      y = function yLinear(v) {
        return top + plotH - ((v - min) / (max - min || 1)) * plotH
      }
    }
    ticks.forEach(function gridline(tick) {
      var ty = y(tick)
      el('line', { class: 'grid', x1: left, x2: width - right, y1: ty, y2: ty }, svg)
      el('text', { class: 'axis', x: left - 6, y: ty + 4, 'text-anchor': 'end' }, svg).textContent = options.format(tick)
    })
    var span = series.stepSeconds * points
    var labels = [[0, '−' + (span >= 60 ? span / 60 + ' min' : span + ' s')], [Math.floor((points - 1) / 2), '−' + (span >= 120 ? span / 120 + ' min' : span / 2 + ' s')], [points - 1, 'now']]
    labels.forEach(function xLabel(label, i) {
      el('text', { class: 'axis', x: x(label[0]), y: height - 4, 'text-anchor': i === 0 ? 'start' : i === 2 ? 'end' : 'middle' }, svg).textContent = label[1]
    })
    if (values.length === 0) {
      el('text', { class: 'empty', x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, svg).textContent = 'no data in this window yet'
    }
    lines.forEach(function drawLine(line) {
      var d = ''
      var v = line.values
      for (var i = 0; i < v.length; i++) {
        if (v[i] === null || v[i] === undefined || (options.log && !(v[i] > 0))) continue
        var before = i > 0 && v[i - 1] !== null && v[i - 1] !== undefined && (!options.log || v[i - 1] > 0)
        var after = i + 1 < v.length && v[i + 1] !== null && v[i + 1] !== undefined && (!options.log || v[i + 1] > 0)
        var px = x(i).toFixed(1)
        var py = y(v[i]).toFixed(1)
        d += (before ? 'L' : 'M') + px + ' ' + py
        // a point with no neighbour would draw nothing as a line
        if (!before && !after) el('circle', { class: 'dot ' + line.cls, cx: px, cy: py, r: 2.5 }, svg)
      }
      if (d) el('path', { class: 'line ' + line.cls, d: d }, svg)
    })
    var latest = lines[lines.length - 1].values
    var last = null
    for (var i = latest.length - 1; i >= 0 && last === null; i--) if (latest[i] !== null && latest[i] !== undefined) last = latest[i]
    svg.setAttribute('aria-label', svg.getAttribute('aria-label').split(':')[0] + ': latest ' + (last === null ? 'none' : options.format(last)))
  }

  // ------------------------------------------------------------------------- the stream

  function setStatus(state, text) {
    var status = document.getElementById('status')
    status.setAttribute('data-state', state)
    if (status.textContent !== text) status.textContent = text
  }

  function connect() {
    clearTimeout(retryTimer)
    if (source !== null) source.close()
    var stream = new EventSource(base + '/events?window=' + windowMinutes)
    source = stream
    stream.addEventListener('view', function onView(event) {
      if (stream !== source) return
      var view
      try {
        view = JSON.parse(event.data)
      } catch (err) {
        return
      }
      if (view.windowMinutes !== windowMinutes) return
      retries = 0
      setStatus('live', 'live')
      armWatchdog()
      render(view)
    })
    stream.addEventListener('error', function onError() {
      if (stream !== source) return
      setStatus('reconnecting', 'reconnecting…')
      // CONNECTING: the browser retries by itself; CLOSED (a 404, a proxy's error page): we do
      if (stream.readyState === EventSource.CLOSED) scheduleReconnect()
    })
    armWatchdog()
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer)
    retryTimer = setTimeout(connect, RECONNECT_MS[Math.min(retries++, RECONNECT_MS.length - 1)])
  }

  /** A stream that went quiet (a proxy holding it, a laptop waking up) is replaced. */
  function armWatchdog() {
    clearTimeout(watchdog)
    watchdog = setTimeout(function stale() {
      setStatus('reconnecting', 'reconnecting…')
      connect()
    }, STALE_MS)
  }

  // ------------------------------------------------------------------------- the window buttons

  function readWindow() {
    var match = /window=(\d+)/.exec(location.hash)
    var asked = match ? Number(match[1]) : 5
    return WINDOWS.indexOf(asked) === -1 ? 5 : asked
  }

  function showWindow() {
    var buttons = document.querySelectorAll('[data-window]')
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute('aria-pressed', String(Number(buttons[i].getAttribute('data-window')) === windowMinutes))
    }
  }

  document.querySelector('.windows').addEventListener('click', function chooseWindow(event) {
    var button = event.target.closest('[data-window]')
    if (!button) return
    var chosen = Number(button.getAttribute('data-window'))
    if (chosen === windowMinutes) return
    windowMinutes = chosen
    history.replaceState(null, '', '#window=' + chosen)
    showWindow()
    connect()
  })

  var resizeTimer = 0
  window.addEventListener('resize', function redraw() {
    clearTimeout(resizeTimer)
    resizeTimer = setTimeout(function later() {
      if (lastView !== null) drawCharts(lastView)
    }, 100)
  })

  showWindow()
  connect()
})()
