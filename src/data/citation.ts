/**
 * CTD's terms (header of every CTD download) require software that uses CTD data to cite CTD and
 * link to the relevant CTD pages. The app shows this wherever CTD data is used.
 */
export const CTD_CITATION = {
  text:
    'Davis AP, Wiegers TC, Sciaky D, Barkalow F, Strong M, Wyatt B, Wiegers J, McMorran R, Abrar S, Mattingly CJ. ' +
    "Comparative Toxicogenomics Database's 20th anniversary: update 2025. Nucleic Acids Res. 2025;53(D1):D1338-D1348.",
  doi: '10.1093/nar/gkae883',
  url: 'http://ctdbase.org/',
  citingUrl: 'http://ctdbase.org/about/publications/#citing',
  termsUrl: 'http://ctdbase.org/about/legal.jsp',
} as const;

/** CTD's own pages for a gene (NCBI Gene ID) and a disease (MEDIC id such as MESH:D003920 or OMIM:219700). */
export function ctdGeneUrl(geneId: string): string {
  return `http://ctdbase.org/detail.go?type=gene&acc=${encodeURIComponent(geneId)}`;
}

export function ctdDiseaseUrl(diseaseId: string): string {
  return `http://ctdbase.org/detail.go?type=disease&acc=${encodeURIComponent(diseaseId)}`;
}
