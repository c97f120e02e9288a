<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- How sequences become text: adjacent atomic values from different instructions, text node merging, xsl:sequence of attributes. -->
  <xsl:template match="/antraege">
    <r>
      <a><xsl:value-of select="1, 2, 3"/></a>
      <b><xsl:value-of select="antrag/@id" separator=""/></b>
      <c><xsl:sequence select="1, 2"/><xsl:sequence select="3"/>x<xsl:sequence select="'y', 'z'"/></c>
      <e><xsl:sequence select="antrag[1]/@id, antrag[1]/@art"/><xsl:attribute name="extra" select="1 to 3"/></e>
      <f><xsl:value-of select="()" separator=","/>|<xsl:value-of select="''"/>|</f>
      <g><xsl:attribute name="x" separator="-" select="'a', 'b'"/><xsl:value-of select="antrag[1]/(@id, name)" separator="#"/></g>
      <h><xsl:copy-of select="antrag[1]/name/text(), 'atom', antrag[2]/name/text()"/></h>
    </r>
  </xsl:template>
</xsl:stylesheet>
