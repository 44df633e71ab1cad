import { createHash } from 'node:crypto';

/** AuthenticationMD5Password response: "md5" + md5(md5(password + user) + salt), hex. */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return `md5${createHash('md5').update(inner, 'latin1').update(salt).digest('hex')}`;
}
