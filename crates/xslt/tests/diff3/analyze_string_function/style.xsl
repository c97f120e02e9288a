<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all" xmlns:fn="http://www.w3.org/2005/xpath-functions">
  <!-- fn:analyze-string returns a tree that can be navigated and copied. -->
  <xsl:template match="/adressen">
    <r>
      <xsl:variable name="a" select="analyze-string(adresse[1]/tel, '(\d+)')"/>
      <xsl:copy-of select="$a"/>
      <n><xsl:value-of select="$a/fn:match/fn:group[@nr = 1]" separator="-"/></n>
      <xsl:copy-of select="analyze-string('Bonn 53111, Köln 50667', '([A-ZÄÖÜ]\w+) (\d{5})')"/>
    </r>
  </xsl:template>
</xsl:stylesheet>
