/*
 * Make the sidebar buttons of the page header work (at every width: on a phone they are the only way
 * to the left navigation and to the page's contents).
 *
 * pydata-sphinx-theme 0.17 adds its own hidden `.primary-toggle` / `.secondary-toggle` buttons to the
 * top navbar, before sphinx-book-theme's visible ones, and both themes attach their click handlers with
 * document.querySelector, i.e. to the hidden buttons only (pydata-sphinx-theme issue #2451). Forward a
 * click on any other such button to the one that has the handlers. Delete this file (and its line in
 * _config.yml) once the themes handle every button themselves; tests/browser checks the buttons.
 */
(() => {
  const forward = (selector) => {
    const buttons = document.querySelectorAll(selector);
    const handled = buttons[0];
    buttons.forEach((button) => {
      if (button === handled) return;
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        handled.click();
      });
    });
  };
  const setup = () => {
    forward(".primary-toggle");
    forward(".secondary-toggle");
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
