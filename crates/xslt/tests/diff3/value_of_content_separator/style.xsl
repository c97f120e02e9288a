<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- xsl:value-of separators: a single space by default with select, "" by default with a sequence constructor (XSLT 3.0 11.4.2). -->
  <xsl:template match="/antraege">
    <r>
      <a><xsl:value-of select="antrag[position() le 3]/@id"/></a>
      <b><xsl:value-of><xsl:sequence select="1, 2"/><xsl:text>t</xsl:text><xsl:sequence select="3"/></xsl:value-of></b>
      <c><xsl:value-of><xsl:for-each select="antrag[position() le 3]"><xsl:sequence select="string(@id)"/></xsl:for-each></xsl:value-of></c>
      <d><xsl:value-of separator="/"><xsl:sequence select="antrag[1]/name/text(), 'x', 'y'"/></xsl:value-of></d>
    </r>
  </xsl:template>
</xsl:stylesheet>
