/**
 * One plain email address, `local@domain`, nothing else: no display name (`"x" <a@evil.test>`),
 * no list (`a,b@evil.test`), no quoted local part, no comments, no route, no IP literal, ASCII
 * only. What we store is exactly where mail goes: a mail library given a looser string may parse
 * it into other or more recipients than the one the user sees.
 *
 * The local part is RFC 5322's dot-atom (letters, digits and !#$%&'*+/=?^_`{|}~- in dot-separated
 * runs) of at most 64 characters; the domain is two or more DNS labels (letters, digits, inner
 * hyphens; at most 63 each) whose last is alphabetic or an IDNA `xn--` label; at most 254 in all.
 */
export const EMAIL_ADDRESS_MAX_LENGTH = 254;

const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const LOCAL_PART = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`);
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const TOP_LABEL = /^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/;

/** True when `value` is one plain address as described above (untrimmed: spaces make it false). */
export function isPlainEmailAddress(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > EMAIL_ADDRESS_MAX_LENGTH) return false;
  const at = value.indexOf('@');
  if (at < 1 || at !== value.lastIndexOf('@')) return false;
  const local = value.slice(0, at);
  const labels = value.slice(at + 1).split('.');
  return (
    local.length <= 64 &&
    LOCAL_PART.test(local) &&
    labels.length >= 2 &&
    labels.every((label) => LABEL.test(label)) &&
    TOP_LABEL.test(labels.at(-1) ?? '')
  );
}
