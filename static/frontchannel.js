// The signed-out page: once the front-channel logout frames have loaded (the window's
// load event waits for every iframe), or after five seconds at most, continue to the
// application. Without scripts the "Continue" link does the same.
(function () {
  var link = document.getElementById("continue");
  if (!link) return;
  var gone = false;
  function go() {
    if (!gone) {
      gone = true;
      window.location.replace(link.href);
    }
  }
  if (document.readyState === "complete") go();
  else window.addEventListener("load", go);
  setTimeout(go, 5000);
})();
