// idphoto form: choose a photo, a spec and a background; submit to the API; poll; show the result.
// Plain JavaScript, no build step. The CSRF token comes from <meta name="csrf-token">.
(function () {
  "use strict";

  var FRIENDLY = {
    no_face: "We couldn't find a face in this photo. Use a photo where your face is clearly visible and you look at the camera.",
    multiple_faces: "There is more than one face in this photo. Use a photo of just one person.",
    face_too_small: "Your face is too small in this photo. Move closer to the camera or use a sharper, larger photo.",
    face_cut_off: "Your face is cut off at the edge of the photo. Use a photo that shows your whole head.",
    head_cut_off: "The top of your head is cut off. Use a photo with some space above your hair.",
    too_close: "You are too close to the camera: the photo needs to show your neck and shoulders too.",
    unsupported_image: "This file isn't a photo we can read. Please upload a JPEG, PNG, WebP or HEIC image.",
    image_too_large: "This image has too many pixels for us to handle. Please use a smaller image.",
    image_too_small: "This photo is too small (too few pixels). Please use a larger, sharper photo.",
    missing_photo: "Please choose a photo first.",
    rate_limited: "You have sent many requests in a short time. Please wait a minute and try again.",
    overloaded: "We are very busy right now. Please try again in a minute.",
    unavailable: "The service is temporarily unavailable. Please try again in a minute.",
    csrf_failed: "Your session has expired. Please reload the page and try again.",
    unknown_job: "This job no longer exists (it may have expired). Please start again.",
    internal_error: "Something went wrong on our side. Please try again."
  };
  var STEPS = {
    queued: [8, "Waiting for a free worker…"],
    segmenting: [30, "Finding you in the photo…"],
    refining: [55, "Refining the edges (hair)…"],
    compositing: [75, "Placing you on the new background…"],
    storing: [90, "Saving your files…"],
    done: [100, "Done."],
    failed: [100, "Failed."]
  };
  var LABELS = { photo: "Download photo", cutout: "Download cut-out (PNG)", sheet: "Download print sheet",
                 report: "Download report (JSON)" };
  var POLL_MS = 600;

  var form, fileInput, dropZone, preview, errorBox, submitBtn, recomposeBtn, specSelect;
  var progressBox, progressBar, progressText, resultBox;
  var currentFile = null, previewUrl = null, lastJobId = null, polling = null;
  var token = "";

  function $(id) { return document.getElementById(id); }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }
  function clearError() { errorBox.hidden = true; errorBox.textContent = ""; }

  function messageFor(code, fallback) {
    if (code === "file_too_large") {
      return "This file is too large. The limit is " + form.dataset.maxMb + " MB.";
    }
    return FRIENDLY[code] || fallback || "Something went wrong. Please try again.";
  }

  function busy(on) {
    submitBtn.disabled = on;
    recomposeBtn.disabled = on;
  }

  function setFile(file) {
    clearError();
    currentFile = null;
    if (!file) { return; }
    var max = parseInt(form.dataset.maxBytes, 10);
    if (file.size > max) {
      showError(messageFor("file_too_large"));
      return;
    }
    if (file.type && file.type.indexOf("image/") !== 0) {
      showError(messageFor("unsupported_image"));
      return;
    }
    currentFile = file;
    lastJobId = null;
    recomposeBtn.hidden = true;
    if (previewUrl) { URL.revokeObjectURL(previewUrl); }
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.hidden = false;
  }

  function background() {
    var picked = form.querySelector("input[name=background]:checked");
    if (!picked) { return ""; }
    return picked.value === "custom" ? $("custom-colour").value : picked.value;
  }

  function selectBackground(name) {
    var radio = form.querySelector("input[name=background][value='" + name + "']");
    if (radio) { radio.checked = true; }
  }

  function showSpecHint() {
    var info = specInfo[specSelect.value];
    var hint = $("spec-bgs");
    hint.textContent = info ? "Accepted backgrounds: " + info.backgrounds.join(", ").replace(/-/g, " ") + "." : "";
  }

  var specInfo = {};

  function readJson(response) {
    return response.text().then(function (text) {
      try { return JSON.parse(text); } catch (e) { return {}; }
    });
  }

  function request(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = Object.assign({ "Accept": "application/json", "X-CSRF-Token": token },
                                    options.headers || {});
    return fetch(url, options).then(function (response) {
      return readJson(response).then(function (body) {
        return { status: response.status, body: body };
      });
    });
  }

  function setProgress(state) {
    var step = STEPS[state] || [5, "Working…"];
    progressBar.value = step[0];
    progressText.textContent = step[1];
  }

  function start(url, options) {
    busy(true);
    clearError();
    resultBox.hidden = true;
    progressBox.hidden = false;
    progressBar.value = 3;
    progressText.textContent = "Uploading…";
    request(url, options).then(function (r) {
      if (r.status !== 202) {
        fail(messageFor(r.body.error, r.body.message));
        return;
      }
      poll(r.body.job_id);
    }).catch(function () {
      fail("The upload failed. Check your connection; if the photo is very large, try a smaller one.");
    });
  }

  function fail(message) {
    progressBox.hidden = true;
    busy(false);
    showError(message);
  }

  function poll(jobId) {
    if (polling) { clearTimeout(polling); }
    request("/api/v1/jobs/" + encodeURIComponent(jobId)).then(function (r) {
      if (r.status !== 200) {
        fail(messageFor(r.body.error, r.body.message));
        return;
      }
      var job = r.body;
      setProgress(job.state);
      if (job.state === "done") {
        lastJobId = jobId;
        showResult(job);
      } else if (job.state === "failed") {
        fail(messageFor(job.reason, job.message));
      } else {
        polling = setTimeout(function () { poll(jobId); }, POLL_MS);
      }
    }).catch(function () {
      polling = setTimeout(function () { poll(jobId); }, POLL_MS * 3);
    });
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }

  function fmt(value) {
    if (value === null || value === undefined) { return "–"; }
    if (Array.isArray(value)) {
      return value.length === 2 && typeof value[0] === "number" ? value[0] + " – " + value[1]
                                                                : value.join(", ") || "none";
    }
    return String(value);
  }

  function showReport(report) {
    var body = $("report").querySelector("tbody");
    body.textContent = "";
    var verdict = $("verdict");
    if (!report || !report.checks) {
      verdict.textContent = "";
      return;
    }
    report.checks.forEach(function (c) {
      var row = document.createElement("tr");
      cell(row, c.check.replace(/_/g, " "));
      cell(row, fmt(c.value) + (c.unit && c.unit !== "fraction" ? " " + c.unit : ""));
      cell(row, fmt(c.limit));
      var advisory = c.level === "advisory";
      var word = c.pass ? "pass" : (advisory ? "advice" : "fail");
      cell(row, word, c.pass ? "pass" : (advisory ? "warn" : "fail"));
      body.appendChild(row);
    });
    verdict.textContent = report.verdict === "pass" ? "Meets the specification."
      : "Does not meet: " + (report.failed || []).join(", ").replace(/_/g, " ") + ".";
    verdict.className = "verdict " + (report.verdict === "pass" ? "pass" : "fail");
  }

  function showResult(job) {
    progressBox.hidden = true;
    busy(false);
    var outputs = job.outputs || {};
    $("result-img").src = outputs.photo || "";
    var downloads = $("downloads");
    downloads.textContent = "";
    ["photo", "cutout", "sheet", "report"].forEach(function (name) {
      if (!outputs[name]) { return; }
      var a = document.createElement("a");
      a.href = outputs[name];
      a.className = name === "photo" ? "button" : "button secondary";
      a.id = "download-" + name;
      a.setAttribute("download", "");
      a.rel = "noopener";
      a.textContent = LABELS[name] || name;
      downloads.appendChild(a);
    });
    showReport(job.report);
    resultBox.hidden = false;
    recomposeBtn.hidden = false;
    resultBox.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function submit(event) {
    event.preventDefault();
    if (!currentFile) {
      showError(messageFor("missing_photo"));
      return;
    }
    var data = new FormData();
    data.append("photo", currentFile, currentFile.name || "photo");
    data.append("spec", specSelect.value);
    data.append("background", background());
    start("/api/v1/jobs", { method: "POST", body: data });
  }

  function recompose() {
    if (!lastJobId) { return; }
    start("/api/v1/jobs/" + encodeURIComponent(lastJobId) + "/recompose", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ spec: specSelect.value, background: background() })
    });
  }

  function init() {
    form = $("job-form");
    if (!form) { return; }
    var meta = document.querySelector("meta[name=csrf-token]");
    token = meta ? meta.content : "";
    try { specInfo = JSON.parse(form.dataset.specs || "{}"); } catch (e) { specInfo = {}; }
    fileInput = $("photo"); dropZone = $("drop-zone"); preview = $("preview");
    errorBox = $("error"); submitBtn = $("submit"); recomposeBtn = $("recompose");
    specSelect = $("spec"); progressBox = $("progress"); progressBar = $("progress-bar");
    progressText = $("progress-text"); resultBox = $("result");

    document.querySelectorAll(".chip[data-colour]").forEach(function (chip) {
      chip.style.backgroundColor = chip.dataset.colour;
    });
    var custom = $("custom-colour");
    ["input", "click", "focus"].forEach(function (name) {
      custom.addEventListener(name, function () { $("bg-custom").checked = true; });
    });
    specSelect.addEventListener("change", function () {
      var info = specInfo[specSelect.value];
      if (info && info["default"]) { selectBackground(info["default"]); }
      showSpecHint();
    });
    showSpecHint();

    // Browsers cannot show every format we accept (HEIC): no preview then, the upload still works.
    preview.addEventListener("error", function () { preview.hidden = true; });
    fileInput.addEventListener("change", function () { setFile(fileInput.files[0]); });
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
    recomposeBtn.addEventListener("click", recompose);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
