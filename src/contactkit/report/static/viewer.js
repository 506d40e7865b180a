/* contactkit report viewer: a small self-contained WebGL renderer (no libraries, no network).
 * Reads the JSON payload in <script id="ck-data">, shows one sample at a time with an orbit camera
 * (drag: rotate, shift/right-drag: pan, wheel: zoom), per-layer toggles, contact heat colours and
 * penetration markers. Errors are shown in #ck-status and recorded in window.ckErrors. */
(function () {
  'use strict';

  var errors = [];
  window.ckErrors = errors;

  function setStatus(state, text) {
    var s = document.getElementById('ck-status');
    if (!s) return;
    s.setAttribute('data-state', state);
    s.textContent = text;
  }

  function reportError(msg) {
    errors.push(String(msg));
    setStatus('error', 'Viewer error: ' + errors.join('; '));
    var st = document.getElementById('ck-status');
    if (st) st.setAttribute('data-errors', String(errors.length));
  }

  window.addEventListener('error', function (e) { reportError(e.message || 'script error'); });
  window.addEventListener('unhandledrejection', function (e) { reportError('unhandled rejection: ' + e.reason); });
  if (window.console && console.error) {
    var consoleError = console.error;
    console.error = function () {
      reportError(Array.prototype.slice.call(arguments).join(' '));
      return consoleError.apply(console, arguments);
    };
  }

  function b64ToBytes(s) {
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function f32(s) { var b = b64ToBytes(s); return new Float32Array(b.buffer, 0, b.byteLength / 4); }
  function u32(s) { var b = b64ToBytes(s); return new Uint32Array(b.buffer, 0, b.byteLength / 4); }

  /* ---------- 4x4 matrices, column-major ---------- */
  function perspective(fovy, aspect, near, far) {
    var f = 1.0 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }
  function multiply(a, b) {
    var o = new Array(16);
    for (var c = 0; c < 4; c++) {
      for (var r = 0; r < 4; r++) {
        var s = 0;
        for (var k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        o[c * 4 + r] = s;
      }
    }
    return o;
  }
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function normalize(a) { var n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function lookAt(eye, target, up) {
    var z = normalize(sub(eye, target)), x = normalize(cross(up, z)), y = cross(z, x);
    return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
      -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
  }

  /* ---------- shaders ---------- */
  var VS = [
    'attribute vec3 aPos; attribute vec3 aNormal; attribute vec3 aColor;',
    'uniform mat4 uProj; uniform mat4 uView; uniform float uPointSize;',
    'varying vec3 vNormal; varying vec3 vColor;',
    'void main() {',
    '  vec4 p = uView * vec4(aPos, 1.0);',
    '  vNormal = (uView * vec4(aNormal, 0.0)).xyz;',
    '  vColor = aColor;',
    '  gl_PointSize = uPointSize;',
    '  gl_Position = uProj * p;',
    '}'].join('\n');
  var FS = [
    'precision mediump float;',
    'varying vec3 vNormal; varying vec3 vColor;',
    'uniform float uAlpha; uniform float uPoints;',
    'void main() {',
    '  if (uPoints > 0.5) {',
    '    vec2 d = gl_PointCoord - vec2(0.5);',
    '    if (dot(d, d) > 0.25) discard;',
    '    gl_FragColor = vec4(vColor, 1.0);',
    '    return;',
    '  }',
    '  vec3 n = normalize(vNormal);',
    '  float diff = abs(n.z);',
    '  vec3 h = normalize(vec3(0.3, 0.4, 1.0));',
    '  float spec = pow(abs(dot(n, h)), 40.0) * 0.15;',
    '  vec3 c = vColor * (0.32 + 0.68 * diff) + vec3(spec);',
    '  gl_FragColor = vec4(c, uAlpha);',
    '}'].join('\n');

  function compile(gl, type, src) {
    var sh = gl.createShader(type);
    gl.shaderSource(sh, src);
    gl.compileShader(sh);
    if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) throw new Error('shader: ' + gl.getShaderInfoLog(sh));
    return sh;
  }

  /* ---------- geometry: expand indexed meshes to flat arrays with smooth normals ---------- */
  function buildMesh(verts, faces, colors) {
    var nv = verts.length / 3, nf = faces.length / 3;
    var vn = new Float32Array(nv * 3);
    for (var f = 0; f < nf; f++) {
      var a = faces[3 * f], b = faces[3 * f + 1], c = faces[3 * f + 2];
      var e1 = [verts[3 * b] - verts[3 * a], verts[3 * b + 1] - verts[3 * a + 1], verts[3 * b + 2] - verts[3 * a + 2]];
      var e2 = [verts[3 * c] - verts[3 * a], verts[3 * c + 1] - verts[3 * a + 1], verts[3 * c + 2] - verts[3 * a + 2]];
      var n = cross(e1, e2);  // area-weighted
      for (var k = 0; k < 3; k++) { vn[3 * a + k] += n[k]; vn[3 * b + k] += n[k]; vn[3 * c + k] += n[k]; }
    }
    var pos = new Float32Array(nf * 9), nor = new Float32Array(nf * 9), col = new Float32Array(nf * 9);
    for (var i = 0; i < nf * 3; i++) {
      var v = faces[i];
      var nn = normalize([vn[3 * v], vn[3 * v + 1], vn[3 * v + 2]]);
      for (var j = 0; j < 3; j++) {
        pos[3 * i + j] = verts[3 * v + j];
        nor[3 * i + j] = nn[j];
        col[3 * i + j] = colors[3 * v + j] / 255.0;
      }
    }
    return { pos: pos, nor: nor, col: col, count: nf * 3 };
  }

  function centroid(v) {
    var c = [0, 0, 0], n = v.length / 3;
    for (var i = 0; i < v.length; i += 3) { c[0] += v[i]; c[1] += v[i + 1]; c[2] += v[i + 2]; }
    return [c[0] / n, c[1] / n, c[2] / n];
  }

  function main() {
    var payloadEl = document.getElementById('ck-data');
    var data = JSON.parse(payloadEl.textContent);
    var canvas = document.getElementById('ck-canvas');
    var gl = canvas.getContext('webgl', { antialias: true, preserveDrawingBuffer: true }) ||
      canvas.getContext('experimental-webgl', { preserveDrawingBuffer: true });
    if (!gl) throw new Error('WebGL is not available in this browser');

    var prog = gl.createProgram();
    gl.attachShader(prog, compile(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, compile(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error('link: ' + gl.getProgramInfoLog(prog));
    gl.useProgram(prog);
    var loc = {
      aPos: gl.getAttribLocation(prog, 'aPos'), aNormal: gl.getAttribLocation(prog, 'aNormal'),
      aColor: gl.getAttribLocation(prog, 'aColor'), uProj: gl.getUniformLocation(prog, 'uProj'),
      uView: gl.getUniformLocation(prog, 'uView'), uPointSize: gl.getUniformLocation(prog, 'uPointSize'),
      uAlpha: gl.getUniformLocation(prog, 'uAlpha'), uPoints: gl.getUniformLocation(prog, 'uPoints')
    };

    var faceSets = {};
    Object.keys(data.faces).forEach(function (k) { faceSets[k] = u32(data.faces[k]); });

    function upload(arr) {
      var buf = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.bufferData(gl.ARRAY_BUFFER, arr, gl.STATIC_DRAW);
      return buf;
    }

    var state = { sample: 0, contact: true, penetration: true, objectAlpha: 1.0, layers: [],
      yaw: 0.6, pitch: 0.35, dist: 1, target: [0, 0, 0], radius: 0.1, frames: 0 };

    function loadSample(idx) {
      state.layers.forEach(function (L) { [L.bPos, L.bNor, L.bColPlain, L.bColContact, L.bPts, L.bPtsCol]
        .forEach(function (b) { if (b) gl.deleteBuffer(b); }); });
      var s = data.samples[idx];
      var lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
      state.layers = s.layers.map(function (ld) {
        var verts = f32(ld.vertices), faces = faceSets[ld.faces];
        for (var i = 0; i < verts.length; i += 3) {
          for (var k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], verts[i + k]); hi[k] = Math.max(hi[k], verts[i + k]); }
        }
        var plain = b64ToBytes(ld.colors), contact = ld.contact_colors ? b64ToBytes(ld.contact_colors) : plain;
        var mPlain = buildMesh(verts, faces, plain), mContact = buildMesh(verts, faces, contact);
        var L = { name: ld.name, role: ld.role, visible: ld.visible, count: mPlain.count,
          bPos: upload(mPlain.pos), bNor: upload(mPlain.nor), bColPlain: upload(mPlain.col),
          bColContact: upload(mContact.col), nPts: 0, bPts: null, bPtsCol: null };
        if (ld.penetrating) {
          var idxs = u32(ld.penetrating);
          var pts = new Float32Array(idxs.length * 3), pc = new Float32Array(idxs.length * 3);
          for (var p = 0; p < idxs.length; p++) {
            for (var q = 0; q < 3; q++) { pts[3 * p + q] = verts[3 * idxs[p] + q]; pc[3 * p + q] = data.penetration_color[q]; }
          }
          L.nPts = idxs.length;
          if (L.nPts > 0) { L.bPts = upload(pts); L.bPtsCol = upload(pc); }
        }
        return L;
      });
      state.target = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2];
      // look at the hand-object pair from the side, so the contact region between them is in view
      var objL = s.layers.filter(function (l) { return l.role === 'object'; })[0];
      var handL = s.layers.filter(function (l) { return l.role === 'refined' && l.visible; })[0] ||
        s.layers.filter(function (l) { return l.role !== 'object' && l.visible; })[0];
      state.yaw = 0.6;
      if (objL && handL) {
        var co = centroid(f32(objL.vertices)), ch = centroid(f32(handL.vertices));
        var dx = ch[0] - co[0], dz = ch[2] - co[2];
        if (Math.abs(dx) + Math.abs(dz) > 1e-9) state.yaw = Math.atan2(dx, dz) + Math.PI / 2;
      }
      state.radius = Math.max(1e-4, 0.5 * Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]));
      state.dist = state.radius * 2.6;
      state.sample = idx;
      buildControls(s);
      draw();
    }

    function bindAttr(l, buf) {
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.enableVertexAttribArray(l);
      gl.vertexAttribPointer(l, 3, gl.FLOAT, false, 0, 0);
    }

    function draw() {
      var w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
        canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      }
      gl.viewport(0, 0, canvas.width, canvas.height);
      var bg = data.background;
      gl.clearColor(bg[0], bg[1], bg[2], 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      var cp = Math.cos(state.pitch), eye = [
        state.target[0] + state.dist * cp * Math.sin(state.yaw),
        state.target[1] + state.dist * Math.sin(state.pitch),
        state.target[2] + state.dist * cp * Math.cos(state.yaw)];
      var view = lookAt(eye, state.target, [0, 1, 0]);
      var proj = perspective(0.7, canvas.width / Math.max(1, canvas.height),
        Math.max(1e-5, state.dist - 4 * state.radius), state.dist + 4 * state.radius);
      gl.uniformMatrix4fv(loc.uProj, false, new Float32Array(proj));
      gl.uniformMatrix4fv(loc.uView, false, new Float32Array(view));
      gl.uniform1f(loc.uPointSize, 6.0 * dpr);
      gl.enable(gl.DEPTH_TEST);
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      gl.uniform1f(loc.uPoints, 0.0);
      // opaque layers first; then the translucent object in two passes: its depth alone (so only its nearest
      // surface is kept), then its colour blended over what is behind it, with depth test LEQUAL and no depth
      // writes. Its own back and front faces never blend over each other in triangle order (no artefacts).
      function drawLayer(L, alpha) {
        gl.uniform1f(loc.uAlpha, alpha);
        bindAttr(loc.aPos, L.bPos);
        bindAttr(loc.aNormal, L.bNor);
        bindAttr(loc.aColor, state.contact ? L.bColContact : L.bColPlain);
        gl.drawArrays(gl.TRIANGLES, 0, L.count);
      }
      var see = state.objectAlpha < 0.999;
      state.layers.forEach(function (L) {
        if (L.visible && !(see && L.role === 'object')) drawLayer(L, L.role === 'object' ? state.objectAlpha : 1.0);
      });
      if (see) {
        state.layers.forEach(function (L) {
          if (!L.visible || L.role !== 'object') return;
          gl.colorMask(false, false, false, false);
          gl.depthMask(true);
          drawLayer(L, state.objectAlpha);
          gl.colorMask(true, true, true, true);
          gl.depthMask(false);
          gl.depthFunc(gl.LEQUAL);
          drawLayer(L, state.objectAlpha);
          gl.depthFunc(gl.LESS);
        });
      }
      gl.depthMask(true);
      if (state.penetration) {
        gl.disable(gl.DEPTH_TEST);
        gl.uniform1f(loc.uPoints, 1.0);
        gl.disableVertexAttribArray(loc.aNormal);
        gl.vertexAttrib3f(loc.aNormal, 0, 0, 1);
        state.layers.forEach(function (L) {
          if (!L.visible || !L.nPts) return;
          bindAttr(loc.aPos, L.bPts);
          bindAttr(loc.aColor, L.bPtsCol);
          gl.drawArrays(gl.POINTS, 0, L.nPts);
        });
        gl.enable(gl.DEPTH_TEST);
      }
      var err = gl.getError();
      if (err !== gl.NO_ERROR) reportError('WebGL error ' + err);
      state.frames += 1;
      if (!errors.length) setStatus('ok', 'Rendered ' + state.layers.length + ' layers');
      var st = document.getElementById('ck-status');
      if (st) st.setAttribute('data-errors', String(errors.length));
      canvas.setAttribute('data-frames', String(state.frames));
      var r = canvas.getBoundingClientRect();
      canvas.setAttribute('data-rect', [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY),
        Math.round(r.width), Math.round(r.height)].join(','));
    }

    var scheduled = false;
    function redraw() {
      if (scheduled) return;
      scheduled = true;
      window.requestAnimationFrame(function () { scheduled = false; draw(); });
    }

    /* ---------- controls ---------- */
    function el(tag, attrs, text) {
      var e = document.createElement(tag);
      Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (text !== undefined) e.textContent = text;
      return e;
    }

    function buildControls(s) {
      var box = document.getElementById('ck-layers');
      box.innerHTML = '';
      var oracleHeading = false;
      state.layers.forEach(function (L, i) {
        if (!oracleHeading && / \(oracle\)$/.test(L.name)) {
          oracleHeading = true;
          box.appendChild(el('div', { 'class': 'ck-sub' }, 'upper bounds: given the ground truth'));
        }
        var id = 'ck-layer-' + i, row = el('label', { 'for': id, 'class': 'ck-row' });
        var cb = el('input', { type: 'checkbox', id: id });
        cb.checked = L.visible;
        cb.addEventListener('change', function () { L.visible = cb.checked; redraw(); });
        var sw = el('span', { 'class': 'ck-swatch' });
        var rgb = s.layers[i].swatch;
        sw.style.background = 'rgb(' + rgb[0] + ',' + rgb[1] + ',' + rgb[2] + ')';
        row.appendChild(cb); row.appendChild(sw); row.appendChild(document.createTextNode(' ' + L.name));
        if (L.nPts) row.appendChild(el('span', { 'class': 'ck-pen' }, ' ' + L.nPts + ' inside'));
        if (s.layers[i].detail) row.appendChild(el('span', { 'class': 'ck-detail' }, s.layers[i].detail));
        box.appendChild(row);
      });
      var tbl = document.getElementById('ck-sample-metrics');
      tbl.innerHTML = '';
      var names = s.metric_names || [];
      if (!names.length) return;
      var head = el('tr');
      head.appendChild(el('th', {}, 'layer'));
      names.forEach(function (n, j) { head.appendChild(el('th', {}, s.metric_labels[j])); });
      tbl.appendChild(head);
      var swatches = {};
      s.layers.forEach(function (ld) { swatches[ld.name] = ld.swatch; });
      Object.keys(s.metrics).forEach(function (layer) {
        var tr = el('tr'), td = el('td');
        if (swatches[layer]) {
          var sw = el('span', { 'class': 'ck-swatch' }), c = swatches[layer];
          sw.style.background = 'rgb(' + c[0] + ',' + c[1] + ',' + c[2] + ')';
          td.appendChild(sw);
        }
        td.appendChild(document.createTextNode(' ' + layer));
        tr.appendChild(td);
        names.forEach(function (n, j) {
          var v = s.metrics[layer][n], d = (s.metric_decimals || [])[j];
          var txt = (v === undefined || v === null) ? '-' : Number(v).toFixed(d === undefined ? 2 : d);
          tr.appendChild(el('td', { 'class': 'num' }, txt));
        });
        tbl.appendChild(tr);
      });
    }

    var select = document.getElementById('ck-sample');
    data.samples.forEach(function (s, i) { select.appendChild(el('option', { value: String(i) }, s.title)); });
    select.addEventListener('change', function () { loadSample(parseInt(select.value, 10)); });
    var cbContact = document.getElementById('ck-contact');
    cbContact.addEventListener('change', function () { state.contact = cbContact.checked; redraw(); });
    var cbPen = document.getElementById('ck-penetration');
    cbPen.addEventListener('change', function () { state.penetration = cbPen.checked; redraw(); });
    var alpha = document.getElementById('ck-alpha');
    alpha.addEventListener('input', function () { state.objectAlpha = parseFloat(alpha.value); redraw(); });
    state.objectAlpha = parseFloat(alpha.value);
    document.getElementById('ck-reset').addEventListener('click', function () {
      state.pitch = 0.35; loadSample(state.sample);
    });

    var drag = null;
    canvas.addEventListener('contextmenu', function (e) { e.preventDefault(); });
    canvas.addEventListener('pointerdown', function (e) {
      drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button === 2 };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointerup', function () { drag = null; });
    canvas.addEventListener('pointermove', function (e) {
      if (!drag) return;
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      if (drag.pan) {
        var s = state.dist / canvas.clientHeight, cy = Math.cos(state.yaw), sy = Math.sin(state.yaw);
        var right = [cy, 0, -sy], up = [-Math.sin(state.pitch) * sy, Math.cos(state.pitch), -Math.sin(state.pitch) * cy];
        for (var k = 0; k < 3; k++) state.target[k] += (-dx * right[k] + dy * up[k]) * s;
      } else {
        state.yaw -= dx * 0.01;
        state.pitch = Math.max(-1.55, Math.min(1.55, state.pitch + dy * 0.01));
      }
      redraw();
    });
    canvas.addEventListener('wheel', function (e) {
      e.preventDefault();
      state.dist = Math.max(state.radius * 0.2, Math.min(state.radius * 20, state.dist * Math.exp(e.deltaY * 0.001)));
      redraw();
    }, { passive: false });
    window.addEventListener('resize', redraw);

    loadSample(0);
  }

  function start() {
    try { main(); } catch (e) { reportError(e && e.message ? e.message : e); }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
