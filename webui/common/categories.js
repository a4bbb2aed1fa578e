// The categories a box filters by, in the order the pages list them. The agent refuses
// any other name, so the owner UI and the console offer exactly these.
export const CATEGORIES = ['malware', 'phishing', 'c2', 'ads', 'tracking', 'adult', 'gambling',
  'social', 'doh-bypass', 'fake', 'dyndns'];
