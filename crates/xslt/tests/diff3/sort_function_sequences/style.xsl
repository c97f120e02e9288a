<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- fn:sort with key functions, reverse, subsequence, index-of, insert-before, remove, head/tail. -->
  <xsl:template match="/antraege">
    <s>
      <a><xsl:value-of select="sort(antrag, (), function($a) { xs:decimal($a/@betrag) }) ! @id"/></a>
      <b><xsl:value-of select="sort(antrag, (), function($a) { $a/name, $a/vorname }) ! @id"/></b>
      <c><xsl:value-of select="reverse(antrag/@id)"/></c>
      <d><xsl:value-of select="subsequence(antrag/@id, 2, 3)"/></d>
      <e><xsl:value-of select="index-of(antrag/@status, 'offen')"/></e>
      <f><xsl:value-of select="insert-before(('a', 'b', 'c'), 2, ('x', 'y'))"/></f>
      <g><xsl:value-of select="remove(antrag/@id, 1)"/></g>
      <h><xsl:value-of select="head(antrag/name), count(tail(antrag))"/></h>
      <i><xsl:value-of select="(antrag/@id)[position() = (1, last())]"/></i>
      <j><xsl:value-of select="deep-equal((1, 2, 3), (1, 2, 3)), deep-equal(antrag[1], antrag[3]), empty(()), exists(antrag[10])"/></j>
      <k><xsl:value-of select="(3, 1, 2)[. gt 1], (5 to 1), reverse(1 to 3)"/></k>
      <l><xsl:value-of select="for-each(1 to 3, function($x) { $x * $x }), filter(1 to 10, function($x) { $x mod 4 = 0 }), fold-left(1 to 5, 0, function($a, $b) { $a + $b })"/></l>
      <m><xsl:value-of select="string-join(sort(('b', 'B', 'a', 'A', 'ä', 'Ä', '10', '9')), ' ')"/></m>
    </s>
  </xsl:template>
</xsl:stylesheet>
