<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:array="http://www.w3.org/2005/xpath-functions/array" exclude-result-prefixes="#all">
  <!-- array:sort (XPath 3.1) with and without a key function. -->
  <xsl:template match="/antraege">
    <r>
      <a><xsl:value-of select="array:sort([3, 1, 2])?*"/></a>
      <b><xsl:value-of select="array:sort(array { antrag/string(name) })?*"/></b>
      <c><xsl:value-of select="array:sort(array { antrag }, (), function($a) { xs:decimal($a/@betrag) })?* ! string(@id)"/></c>
    </r>
  </xsl:template>
</xsl:stylesheet>
