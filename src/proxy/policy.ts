import { BlockList, isIPv4 } from 'node:net';

/**
 * A target's `allow` rules compiled once. No `allow` key: every client that reaches the port is
 * allowed (the NetworkPolicy is the fence). `allow: []` allows nobody: fail closed.
 */
export class AccessPolicy {
  readonly #list: BlockList | undefined;

  constructor(rules: readonly { cidr: string }[] | undefined) {
    if (!rules) return;
    this.#list = new BlockList();
    for (const { cidr } of rules) {
      const [addr, bits] = cidr.split('/') as [string, string | undefined];
      const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.#list.addAddress(addr, type);
      else this.#list.addSubnet(addr, Number(bits), type);
    }
  }

  allows(address: string): boolean {
    if (!this.#list) return true;
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return this.#list.check(mapped[1]!, 'ipv4');
    return this.#list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  }
}
