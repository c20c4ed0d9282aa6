// idphoto pages: plain JavaScript, no build step, on top of pages that work without it.
// Form page: search the documents, order the backgrounds for the chosen one, take a photo with
// the camera, upload with progress, then go to the job's page. Job page: follow the stages,
// then show the result; a background swatch re-composes at once.
// Every text comes from <script id="strings" type="application/json"> (the gettext catalogue).
(function () {
  "use strict";

  var POLL_MS = 400;
  var T = { errors: {}, states: {}, stages: [] };
  var token = "";

  function $(id) { return document.getElementById(id); }

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, k) { return String(values[k]); });
  }

  function errorText(code) {
    return T.errors[code] || T.errors.generic;
  }

  function showError(message) {
    var box = $("error");
    box.textContent = message;
    box.hidden = false;
    box.focus();
    box.scrollIntoView({ block: "center" });
  }

  function clearError() {
    var box = $("error");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  function parse(text) {
    try { return JSON.parse(text); } catch (e) { return {}; }
  }

  function api(method, url, body) {
    var headers = { "Accept": "application/json", "X-CSRF-Token": token };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(url, {
      method: method, credentials: "same-origin", headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) { return { status: r.status, body: parse(t) }; });
    });
  }

  // --- the form page ----------------------------------------------------------------------

  function initForm(form) {
    var specInfo = parse(form.dataset.specs || "{}");
    var fileInput = $("photo"), camInput = $("camera"), dropZone = $("drop-zone");
    var preview = $("preview"), spec = $("spec"), submitBtn = $("submit");
    var previewUrl = null, chosen = null;
    var maxBytes = parseInt(form.dataset.maxBytes, 10);

    function setFile(file, fromInput) {
      clearError();
      chosen = null;
      if (!file) { return; }
      if (file.size > maxBytes) { showError(errorText("file_too_large")); return; }
      if (file.type && file.type.indexOf("image/") !== 0) {
        showError(errorText("unsupported_image"));
        return;
      }
      chosen = file;
      if (fromInput !== fileInput) {
        try {  // the form's own field holds the file, so the post is the same as without script
          var dt = new DataTransfer();
          dt.items.add(file);
          fileInput.files = dt.files;
        } catch (e) { /* older browsers: `chosen` is sent instead */ }
      }
      if (previewUrl) { URL.revokeObjectURL(previewUrl); }
      previewUrl = URL.createObjectURL(file);
      preview.src = previewUrl;
      preview.hidden = false;
    }

    // Backgrounds: the document's accepted ones first, the others in a marked group.
    function orderBackgrounds(selectDefault) {
      var info = specInfo[spec.value];
      $("spec-detail").textContent = info ? info.detail : "";
      var custom = $("custom-size");
      custom.hidden = spec.value !== "custom";
      var accepted = info ? info.backgrounds : null;
      var okBox = $("bg-accepted"), otherBox = $("bg-other");
      var labels = Array.prototype.slice.call(form.querySelectorAll("label.swatch"));
      labels.forEach(function (label) {
        var name = label.dataset.name;
        var ok = accepted ? accepted.indexOf(name) >= 0 : name !== "transparent";
        label.classList.toggle("not-accepted", !ok);
        (ok ? okBox : otherBox).appendChild(label);
      });
      if (accepted) {  // keep the document's own order among the accepted ones
        accepted.forEach(function (name) {
          var l = okBox.querySelector("label[data-name='" + name + "']");
          if (l) { okBox.appendChild(l); }
        });
      }
      var c = otherBox.querySelector("label[data-name='custom']");
      if (c) { otherBox.appendChild(c); }
      $("bg-other-title").hidden = !otherBox.children.length;
      if (selectDefault && info && info["default"]) {
        var radio = form.querySelector("input[name=background][value='" + info["default"] + "']");
        if (radio) { radio.checked = true; }
      }
    }

    function customSpec() {
      var w = $("custom-width").value.trim(), h = $("custom-height").value.trim();
      return w && h;
    }

    function submit(event) {
      event.preventDefault();
      clearError();
      if (!fileInput.files.length && !chosen && !(camInput.files && camInput.files.length)) {
        showError(errorText("missing_photo"));
        return;
      }
      if (spec.value === "custom" && !customSpec()) {
        showError(errorText("bad_parameter"));
        $("custom-width").focus();
        return;
      }
      var data = new FormData(form);
      if (!fileInput.files.length && chosen) { data.set("photo", chosen, chosen.name || "photo.jpg"); }
      var progress = $("progress");
      progress.hidden = false;
      $("progress-bar").value = 1;
      $("progress-text").textContent = T.states.uploading[1];
      progress.focus();
      progress.scrollIntoView({ behavior: "smooth", block: "start" });
      submitBtn.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", token);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) { $("progress-bar").value = Math.round(8 * e.loaded / e.total); }
      };
      xhr.onload = function () {
        var body = parse(xhr.responseText);
        if (xhr.status === 202 && body.page_url) {
          window.location.assign(body.page_url);
          return;
        }
        failed(errorText(body.error));
      };
      xhr.onerror = function () { failed(errorText("upload_failed")); };
      xhr.send(data);
    }

    function failed(message) {
      $("progress").hidden = true;
      submitBtn.disabled = false;
      showError(message);
    }

    // The custom colour: choosing a colour picks "custom"; focus alone (tabbing) changes nothing.
    var customColour = $("custom-colour");
    ["input", "change"].forEach(function (name) {
      customColour.addEventListener(name, function () { $("bg-custom").checked = true; });
    });
    customColour.addEventListener("click", function () { $("bg-custom").checked = true; });

    spec.addEventListener("change", function () { orderBackgrounds(true); });
    initPicker(spec, function () { orderBackgrounds(true); });
    orderBackgrounds(false);

    preview.addEventListener("error", function () { preview.hidden = true; });  // HEIC: no preview
    fileInput.addEventListener("change", function () { setFile(fileInput.files[0], fileInput); });
    camInput.addEventListener("change", function () { setFile(camInput.files[0], camInput); });
    ["dragenter", "dragover"].forEach(function (name) {
      dropZone.addEventListener(name, function (e) { e.preventDefault(); dropZone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      dropZone.addEventListener(name, function (e) { e.preventDefault(); dropZone.classList.remove("over"); });
    });
    dropZone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) { setFile(e.dataTransfer.files[0]); }
    });
    form.addEventListener("submit", submit);
    initCamera(setFile);
  }

  // --- the document picker (the form and the check page) ------------------------------------

  // Show the search box; typing hides the documents that do not match, in either language.
  // `picked` runs when the search moves the choice to the first match.
  function initPicker(spec, picked) {
    function filterSpecs() {
      var q = $("spec-search").value.trim().toLowerCase().replace(/[×*]/g, "x");
      var words = q.split(/\s+/).filter(Boolean);
      var shown = 0, first = null, selectedVisible = false;
      spec.querySelectorAll("option").forEach(function (opt) {
        var hay = (opt.dataset.search || "") + " " + opt.textContent.toLowerCase();
        var hit = words.every(function (w) { return hay.indexOf(w) >= 0; });
        opt.hidden = !hit;
        opt.disabled = !hit;
        if (hit) {
          shown += 1;
          if (!first) { first = opt; }
          if (opt.selected) { selectedVisible = true; }
        }
      });
      spec.querySelectorAll("optgroup").forEach(function (g) {
        g.hidden = !g.querySelector("option:not([hidden])");
      });
      $("spec-count").textContent = shown ? fmt(T.matches, { n: shown }) : T.no_match;
      if (!selectedVisible && first) {
        spec.value = first.value;
        picked();
      }
    }
    $("spec-search-box").hidden = false;
    $("spec-search").addEventListener("input", filterSpecs);
  }

  // --- the check page -----------------------------------------------------------------------

  // The same post as without script, sent in the background: the server's page comes back and
  // its result (or error) replaces this one's, and focus moves to it.
  function initCheck(form) {
    var specInfo = parse(form.dataset.specs || "{}");
    var spec = $("spec"), button = $("check-submit"), status = $("check-status");
    var maxBytes = parseInt(form.dataset.maxBytes, 10);

    function detail() {
      var info = specInfo[spec.value];
      $("spec-detail").textContent = info ? info.detail : "";
    }
    spec.addEventListener("change", detail);
    initPicker(spec, detail);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearError();
      var file = $("photo").files[0];
      if (!file) { showError(errorText("missing_photo")); return; }
      if (file.size > maxBytes) { showError(errorText("file_too_large")); return; }
      button.disabled = true;
      status.textContent = T.checking;
      fetch(form.action, {
        method: "POST", credentials: "same-origin", body: new FormData(form),
        headers: { "Accept": "text/html", "X-CSRF-Token": token }
      }).then(function (r) {
        return r.text().then(function (html) { return { status: r.status, html: html }; });
      }).then(function (r) {
        button.disabled = false;
        status.textContent = "";
        var page = new DOMParser().parseFromString(r.html, "text/html");
        var box = page.getElementById("check-result-box"), error = page.getElementById("error");
        if (!box) { showError(errorText("generic")); return; }
        $("check-result-box").innerHTML = box.innerHTML;
        if (error && !error.hidden && error.textContent.trim()) {
          showError(error.textContent.trim());
          return;
        }
        var result = $("check-result");
        if (result) {
          result.focus({ preventScroll: true });
          result.scrollIntoView({ block: "start" });
        }
      }).catch(function () {
        button.disabled = false;
        status.textContent = "";
        showError(errorText("upload_failed"));
      });
    });
  }

  // A live camera view with a head-oval guide, where the browser offers getUserMedia.
  function initCamera(setFile) {
    var open = $("camera-live");
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) { return; }
    open.hidden = false;
    var view = $("camera-view"), video = $("camera-video"), stream = null;

    function stop() {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
      stream = null;
      view.hidden = true;
    }
    open.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false })
        .then(function (s) {
          stream = s;
          video.srcObject = s;
          view.hidden = false;
          $("camera-shoot").focus();
          view.scrollIntoView({ block: "center" });
        })
        .catch(function () { showError(T.camera_error); });
    });
    $("camera-cancel").addEventListener("click", function () { stop(); open.focus(); });
    $("camera-shoot").addEventListener("click", function () {
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob(function (blob) {
        stop();
        setFile(new File([blob], "camera.jpg", { type: "image/jpeg" }));
        $("submit").focus();
      }, "image/jpeg", 0.95);
    });
  }

  // --- the job page -----------------------------------------------------------------------

  function initJob(box) {
    var jobId = box.dataset.jobId, state = box.dataset.state;
    var target = $("progress") || $("result") || $("error");
    if (target) {
      target.focus({ preventScroll: true });
      target.scrollIntoView({ block: "start" });
    }
    if (state !== "done" && state !== "failed") { follow(jobId, false); }
    var recompose = $("recompose-form");
    if (recompose) {
      recompose.addEventListener("submit", function (event) {
        var button = event.submitter;
        if (!button || !button.value) { return; }
        event.preventDefault();
        recomposeTo(jobId, button.value);
      });
    }
  }

  function showStages(job) {
    var stages = job.stages || {}, left = 0;
    T.stages.forEach(function (row) {
      var name = row[0], stateName = row[1], typical = row[2];
      var info = stages[name] || {};
      var done = info.status === "ok" || info.status === "done" || !!info.finished_at;
      var running = !done && (job.state === stateName || info.status === "running");
      if (!done) { left += running && info.started_at ? typical / 2 : typical; }
      var li = document.querySelector("#stages li[data-stage='" + name + "']");
      if (li) {
        li.className = done ? "done" : (running ? "running" : "waiting");
        li.querySelector(".stage-status").textContent =
          done ? T.stage_done : (running ? T.stage_running : T.stage_waiting);
      }
    });
    var step = T.states[job.state] || T.states.queued;
    $("progress-bar").value = step[0];
    var text = $("progress-text");
    text.firstChild.textContent = step[1] + " ";
    $("progress-left").textContent = fmt(T.left, { s: Math.max(1, Math.round(left)) });
  }

  // Poll a job; when it ends, show its page (the server renders the result or the error).
  function follow(jobId, replace) {
    api("GET", "/api/v1/jobs/" + encodeURIComponent(jobId)).then(function (r) {
      if (r.status !== 200) { window.location.reload(); return; }
      var job = r.body;
      if (job.state === "done" || job.state === "failed") {
        var url = "/jobs/" + encodeURIComponent(jobId);
        if (replace) { window.location.assign(url); } else { window.location.replace(url); }
        return;
      }
      if ($("progress")) { showStages(job); }
      setTimeout(function () { follow(jobId, replace); }, POLL_MS);
    }).catch(function () {
      setTimeout(function () { follow(jobId, replace); }, POLL_MS * 3);
    });
  }

  function recomposeTo(jobId, background) {
    var status = $("recompose-status");
    status.textContent = T.recomposing;
    document.querySelectorAll("#recompose-form button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.value === background ? "true" : "false");
    });
    api("POST", "/api/v1/jobs/" + encodeURIComponent(jobId) + "/recompose",
        { background: background }).then(function (r) {
      if (r.status !== 202) { status.textContent = errorText(r.body.error); return; }
      follow(r.body.job_id, true);
    }).catch(function () { status.textContent = errorText("upload_failed"); });
  }

  function init() {
    var meta = document.querySelector("meta[name=csrf-token]");
    token = meta ? meta.content : "";
    var strings = $("strings");
    if (strings) { T = parse(strings.textContent); }
    var form = $("job-form");
    if (form) { initForm(form); }
    var check = $("check-form");
    if (check) { initCheck(check); }
    var job = $("job");
    if (job) { initJob(job); }
  }

  document.addEventListener("DOMContentLoaded", init);
})();
