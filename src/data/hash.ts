/** A 64-bit content hash (two FNV-1a lanes) for dataset fingerprints and pair de-duplication. */
export class ContentHash {
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;

  update(text: string): this {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
    }
    // A separator so that ('ab', 'c') and ('a', 'bc') differ.
    this.a = Math.imul(a ^ 0x1f, 0x01000193);
    this.b = Math.imul(b ^ 0x1f, 0x01000193) ^ (b >>> 15);
    return this;
  }

  /** 16 hex digits. */
  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0');
  }

  /** The hash as one number with 53 significant bits (a Set key). */
  number(): number {
    return (this.a >>> 0) * 2 ** 21 + ((this.b >>> 0) >>> 11);
  }
}
