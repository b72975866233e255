// when.js — times as the API sends them (RFC 3339) and as people read and
// type them (the terminal's local time, <input type="datetime-local">).

const pad = (n) => String(n).padStart(2, '0');

/**
 * isSet reports whether s is a time at all: "" and Go's zero time
 * (0001-01-01T00:00:00Z) mean "none".
 */
export function isSet(s) {
  return typeof s === 'string' && s !== '' && !s.startsWith('0001-01-01');
}

/** parse returns the Date of an RFC 3339 string, or null when unset or bad. */
export function parse(s) {
  if (!isSet(s)) {
    return null;
  }
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** show formats an RFC 3339 time as local "YYYY-MM-DD HH:MM", or none. */
export function show(s, none = '—') {
  const d = parse(s);
  if (!d) {
    return none;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * showSeconds formats an RFC 3339 time as local "YYYY-MM-DD HH:MM:SS", or
 * none: for records where the order of events within a minute matters.
 */
export function showSeconds(s, none = '—') {
  const d = parse(s);
  if (!d) {
    return none;
  }
  return `${show(s)}:${pad(d.getSeconds())}`;
}

/** past reports whether the RFC 3339 time s has passed. */
export function past(s) {
  const d = parse(s);
  return d !== null && d.getTime() <= Date.now();
}

/**
 * rfc3339 turns a datetime-local value ("2027-01-01T09:00") into RFC 3339
 * with the terminal's UTC offset ("2027-01-01T09:00:00+09:00"); "" stays
 * "". It returns null for a value that is not a time.
 */
export function rfc3339(local) {
  if (typeof local !== 'string' || local === '') {
    return '';
  }
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) {
    return null;
  }
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${localValue(d)}:${pad(d.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** localValue formats a Date for <input type="datetime-local">. */
export function localValue(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** inputValue turns an RFC 3339 time into a datetime-local value ("" when unset). */
export function inputValue(s) {
  const d = parse(s);
  return d ? localValue(d) : '';
}

/** fromNow returns the datetime-local value of now plus days and hours. */
export function fromNow(days, hours = 0) {
  return localValue(new Date(Date.now() + ((days * 24) + hours) * 3600 * 1000));
}
