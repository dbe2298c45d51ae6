/**
 * A broker URL fit for logs and error messages: the password is masked, and so is a username
 * that stands alone (`nats://token@host` carries a secret token there).
 */
export function redactUrl(url: string, what = 'broker URL'): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    else if (parsed.username) parsed.username = '***';
    return parsed.toString();
  } catch {
    return `(unparsable ${what})`;
  }
}
