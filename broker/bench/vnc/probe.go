package vnc

import "fmt"

// ProbeScript returns JavaScript for noVNC's page (Peer.URL) that watches the
// canvas pixel (x, y), which is the remote screen's pixel (x, y). It sets
// window.__probe to an array and appends {t, rgb: [r, g, b]} whenever the
// pixel's colour differs from the last one seen, the first sample included;
// t is performance.now() at the animation frame that saw it, so its
// resolution is one display frame. It also sets window.__probeInputs to an
// array of the performance.now() of every mousedown and keydown the page
// gets, for the time from input to change. Evaluating the script again
// restarts both arrays; setting window.__probeStop = true ends the loop. The
// script throws when noVNC has no canvas yet.
func ProbeScript(x, y int) string {
	return fmt.Sprintf(probeJS, x, y)
}

const probeJS = `(() => {
	const x = %d, y = %d;
	const canvas = document.querySelector('#noVNC_container canvas');
	if (!canvas) throw new Error('noVNC has no canvas yet');
	const ctx = canvas.getContext('2d');
	const probe = [], inputs = [];
	window.__probe = probe;
	window.__probeInputs = inputs;
	if (!window.__probeListening) {
		window.__probeListening = true;
		const note = () => window.__probeInputs.push(performance.now());
		document.addEventListener('mousedown', note, true);
		document.addEventListener('keydown', note, true);
	}
	let last = '';
	const step = () => {
		if (window.__probeStop || window.__probe !== probe) return;
		const d = ctx.getImageData(x, y, 1, 1).data;
		const rgb = d[0] + ',' + d[1] + ',' + d[2];
		if (rgb !== last) {
			last = rgb;
			probe.push({t: performance.now(), rgb: [d[0], d[1], d[2]]});
		}
		requestAnimationFrame(step);
	};
	window.__probeStop = false;
	requestAnimationFrame(step);
	return true;
})()`
