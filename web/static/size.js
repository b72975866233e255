// size.js — byte counts as people read them.

const UNITS = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];

/**
 * formatSize writes a byte count in the largest binary unit it reaches,
 * as the broker's messages do: "812 B", "1.5 KiB", "25.0 MiB". A value
 * that is not a number of bytes gives "".
 *
 * @param {number} n
 * @returns {string}
 */
export function formatSize(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    return '';
  }
  for (const [unit, size] of UNITS) {
    if (n >= size) {
      return `${(n / size).toFixed(1)} ${unit}`;
    }
  }
  return `${Math.round(n)} B`;
}
